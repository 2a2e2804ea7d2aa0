package Net::Async::HTTP::Server::Request;

# One request received by a Net::Async::HTTP::Server, and the means to answer it: whole
# (`respond`) or streamed in chunks (`respond_chunk_header`, `write_chunk`,
# `write_chunk_eof`).

use strict;
use warnings;

use Carp qw( croak );
use URI;
use URI::QueryParam;

use constant CRLF => "\x0d\x0a";

sub new
{
   my $class = shift;
   my ( $conn, $req ) = @_;

   return bless {
      conn    => $conn,
      req     => $req,
      pending => "",
      is_done => 0,
   }, $class;
}

# The underlying HTTP::Request.
sub as_http_request { shift->{req} }

# The connection (an IO::Async::Stream) the request arrived on.
sub stream { shift->{conn} }

sub method   { shift->{req}->method }
sub protocol { shift->{req}->protocol }
sub body     { shift->{req}->content }

sub path
{
   my $self = shift;
   return $self->{req}->uri->path;
}

sub query_string
{
   my $self = shift;
   return $self->{req}->uri->query;
}

sub query_form
{
   my $self = shift;
   return $self->{req}->uri->query_form;
}

sub query_param_names
{
   my $self = shift;
   return $self->{req}->uri->query_param;
}

sub query_param
{
   my $self = shift;
   my ( $name ) = @_;
   return $self->{req}->uri->query_param( $name );
}

sub header
{
   my $self = shift;
   my ( $name ) = @_;
   return $self->{req}->header( $name );
}

# All request headers as a list of [ $name, $value ] pairs, in arrival order.
sub headers
{
   my $self = shift;
   my @headers;
   $self->{req}->scan( sub { push @headers, [ $_[0], $_[1] ] } );
   return @headers;
}

# Queues raw octets for the connection, after any earlier request's response.
sub write
{
   my $self = shift;
   my ( $data ) = @_;

   croak "This request has already been responded to" if $self->{is_done};
   utf8::downgrade( $data, 1 ) or croak "HTTP response data must be octets, not characters";

   $self->{pending} .= $data;
   $self->{conn}->_flush_requests;
}

sub done
{
   my $self = shift;
   croak "This request has already been responded to" if $self->{is_done};
   $self->{is_done} = 1;
   $self->{conn}->_flush_requests;
}

sub is_done { shift->{is_done} }

sub _wants_close
{
   my $self = shift;
   my $req = $self->{req};
   my $conn = lc( $req->header( "Connection" ) // "" );
   return 1 if $conn =~ m/\bclose\b/;
   return 1 if ( $req->protocol // "" ) eq "HTTP/1.0" and $conn !~ m/\bkeep-alive\b/;
   return 1 if $self->{close_after};
   return 0;
}

sub _head
{
   my $self = shift;
   my ( $response ) = @_;

   $response->protocol( $self->protocol ) unless defined $response->protocol;
   $response->protocol( "HTTP/1.1" ) unless defined $response->protocol;
   $self->{close_after} = 1 if lc( $response->header( "Connection" ) // "" ) eq "close";

   my $status = $response->status_line;
   return $response->protocol . " " . $status . CRLF .
      $response->headers->as_string( CRLF ) . CRLF;
}

# Sends a whole HTTP::Response. A Content-Length is added when it has none, so the
# connection can stay open for the next request.
sub respond
{
   my $self = shift;
   my ( $response ) = @_;

   my $content = $response->content // "";
   if( !defined $response->header( "Content-Length" )
       and !defined $response->header( "Transfer-Encoding" ) ) {
      utf8::downgrade( $content, 1 ) or croak "HTTP response content must be octets, not characters";
      $response->header( "Content-Length" => length $content );
   }

   $self->write( $self->_head( $response ) . ( $self->method eq "HEAD" ? "" : $content ) );
   $self->done;
}

# Starts a chunked response: sends the head of $response with Transfer-Encoding: chunked.
sub respond_chunk_header
{
   my $self = shift;
   my ( $response ) = @_;

   $response->remove_header( "Content-Length" );
   $response->header( "Transfer-Encoding" => "chunked" );

   $self->write( $self->_head( $response ) );
}

sub write_chunk
{
   my $self = shift;
   my ( $data ) = @_;

   return unless defined $data and length $data;
   utf8::downgrade( $data, 1 ) or croak "HTTP response data must be octets, not characters";
   $self->write( sprintf( "%X", length $data ) . CRLF . $data . CRLF );
}

sub write_chunk_eof
{
   my $self = shift;
   $self->write( "0" . CRLF . CRLF );
   $self->done;
}

1;
