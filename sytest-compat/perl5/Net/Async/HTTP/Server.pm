package Net::Async::HTTP::Server;

# A small HTTP/1.1 server for IO::Async, standing in for CPAN's Net::Async::HTTP::Server
# (not packaged by Debian). It implements the API SyTest uses:
#
#   my $server = Net::Async::HTTP::Server->new(
#      on_request    => sub { my ( $server, $req ) = @_; $req->respond( $http_response ) },
#      request_class => "My::Request",     # optional subclass of ::Request
#   );
#   $loop->add( $server );
#   $server->listen( addr => {...} )     # or with extensions => ["SSL"]
#
# Subclasses may override `on_request` as a method and `make_request` to build their own
# request objects. Each accepted connection is a Net::Async::HTTP::Server::Protocol child
# notifier (`$server->children`). Requests on one connection may be pipelined; their
# responses are written in request order.
#
# Written for Glia's SyTest runner (sytest-compat/); tested by sytest-compat/t/http-server.t.

use strict;
use warnings;

use base qw( IO::Async::Listener );

use Carp qw( croak );

use Net::Async::HTTP::Server::Protocol;
use Net::Async::HTTP::Server::Request;

our $VERSION = '0.14';    # the CPAN version whose API this mirrors

sub _init
{
   my $self = shift;
   my ( $params ) = @_;

   $params->{handle_class} = "Net::Async::HTTP::Server::Protocol";
   $self->{request_class} = "Net::Async::HTTP::Server::Request";

   $self->SUPER::_init( $params );
}

sub configure
{
   my $self = shift;
   my %params = @_;

   foreach (qw( on_request request_class )) {
      $self->{$_} = delete $params{$_} if exists $params{$_};
   }
   defined $self->{request_class} or croak "request_class must be defined";

   $self->SUPER::configure( %params );
}

sub _add_to_loop
{
   my $self = shift;

   $self->can_event( "on_request" ) or croak "Expected either an on_request callback or an 'on_request' method";

   $self->SUPER::_add_to_loop( @_ );
}

sub on_accept
{
   my $self = shift;
   my ( $conn ) = @_;

   $conn->configure(
      on_closed => sub {
         my $conn = shift;
         $conn->on_closed;
         $conn->remove_from_parent;
      },
   );

   $self->add_child( $conn );

   return $conn;
}

# Build the request object handed to on_request; a subclass may override it.
sub make_request
{
   my $self = shift;
   return $self->{request_class}->new( @_ );
}

# Called by a connection once a whole request (head and body) has arrived.
sub _received_request
{
   my $self = shift;
   my ( $request ) = @_;

   $self->invoke_event( on_request => $request );
}

1;
