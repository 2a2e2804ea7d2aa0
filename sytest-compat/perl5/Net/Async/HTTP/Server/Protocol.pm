package Net::Async::HTTP::Server::Protocol;

# One connection of a Net::Async::HTTP::Server: parses requests (Content-Length or chunked
# bodies), hands them to the server, and writes responses back in request order.

use strict;
use warnings;

use base qw( IO::Async::Stream );

use HTTP::Request;

use constant CRLF => "\x0d\x0a";

# Refuse absurd heads instead of buffering without bound.
use constant MAX_HEAD => 64 * 1024;

sub _init
{
   my $self = shift;
   $self->{requests} = [];    # in arrival order, awaiting (the rest of) their responses
   $self->SUPER::_init( @_ );
}

sub on_read
{
   my $self = shift;
   my ( $buffref, $eof ) = @_;

   return 0 if $eof;

   # Tolerate blank lines between pipelined requests (RFC 9112 2.2).
   $$buffref =~ s/^(?:\x0d?\x0a)+//;

   my $end = index( $$buffref, CRLF . CRLF );
   if( $end < 0 ) {
      if( length $$buffref > MAX_HEAD ) {
         $self->_bad_request( "request head too large" );
      }
      return 0;
   }

   my $head = substr( $$buffref, 0, $end + 4, "" );
   my $req = HTTP::Request->parse( $head );
   unless( $req and defined $req->method and length $req->method
           and defined $req->protocol and $req->protocol =~ m{^HTTP/1\.[01]$} ) {
      $self->_bad_request( "malformed request line" );
      return 0;
   }

   if( lc( $req->header( "Expect" ) // "" ) eq "100-continue" ) {
      $self->write( $req->protocol . " 100 Continue" . CRLF . CRLF );
   }

   my $te = $req->header( "Transfer-Encoding" );
   if( defined $te and $te =~ m/\bchunked\s*$/i ) {
      return $self->_read_chunked( $req );
   }

   my $len = $req->header( "Content-Length" ) // 0;
   if( $len !~ m/^\d+$/ ) {
      $self->_bad_request( "bad Content-Length" );
      return 0;
   }

   if( !$len ) {
      $self->_push_request( $req );
      return 1;
   }

   return sub {
      my ( undef, $buffref, $eof ) = @_;
      return undef if $eof;    # the peer gave up mid-body
      return 0 unless length $$buffref >= $len;
      $req->add_content( substr( $$buffref, 0, $len, "" ) );
      $self->_push_request( $req );
      return undef;
   };
}

# Returns a read-handler that collects a chunked body, then the (ignored) trailers.
sub _read_chunked
{
   my $self = shift;
   my ( $req ) = @_;

   my $body = "";
   my $want;    # octets left in the current chunk, undef between chunks

   return sub {
      my ( undef, $buffref, $eof ) = @_;
      return undef if $eof;

      while( 1 ) {
         if( !defined $want ) {
            $$buffref =~ s/^([0-9A-Fa-f]+)[^\x0d\x0a]*\x0d\x0a// or do {
               $self->_bad_request( "bad chunk header" ) if $$buffref =~ m/\x0a/;
               return 0;
            };
            $want = hex $1;
            next if $want;

            # last chunk: skip trailers up to the empty line
            $$buffref =~ s/^(?:[^\x0d\x0a]+\x0d\x0a)*\x0d\x0a// or return 0;
            $req->content( $body );
            $req->header( "Content-Length" => length $body );
            $req->remove_header( "Transfer-Encoding" );
            $self->_push_request( $req );
            return undef;
         }

         return 0 unless length $$buffref >= $want + 2;
         $body .= substr( $$buffref, 0, $want, "" );
         substr( $$buffref, 0, 2, "" ) eq CRLF or do {
            $self->_bad_request( "chunk not followed by CRLF" );
            return 0;
         };
         undef $want;
      }
   };
}

sub _bad_request
{
   my $self = shift;
   my ( $why ) = @_;
   my $body = "$why\n";
   $self->write( "HTTP/1.1 400 Bad Request" . CRLF .
      "Content-Type: text/plain" . CRLF .
      "Content-Length: " . length( $body ) . CRLF .
      "Connection: close" . CRLF . CRLF . $body );
   $self->close_when_empty;
}

sub _push_request
{
   my $self = shift;
   my ( $req ) = @_;

   my $server = $self->parent;
   my $request = $server->make_request( $self, $req );
   push @{ $self->{requests} }, $request;

   $server->_received_request( $request );
}

# Writes whatever the oldest requests have ready, in order; called whenever a request
# produces output.
sub _flush_requests
{
   my $self = shift;

   my $requests = $self->{requests};
   while( @$requests ) {
      my $head = $requests->[0];
      if( length $head->{pending} ) {
         $self->write( $head->{pending} ) unless $self->{closed};
         $head->{pending} = "";
      }
      last unless $head->{is_done};

      shift @$requests;
      if( $head->_wants_close ) {
         @$requests = ();
         $self->close_when_empty;
         last;
      }
   }
}

sub on_closed
{
   my $self = shift;
   $self->{closed} = 1;
   @{ $self->{requests} } = ();
}

1;
