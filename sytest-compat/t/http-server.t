#!/usr/bin/perl
# Net::Async::HTTP::Server stand-in: the API SyTest uses, over plain TCP and TLS.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../perl5";

use Test::More;

use File::Temp qw( tempdir );
use HTTP::Request;
use HTTP::Response;
use IO::Async::Loop;
use IO::Async::Stream;
use IO::Socket::INET;
use Net::Async::HTTP;

use Net::Async::HTTP::Server;

my $loop = IO::Async::Loop->new;

sub wait_for (&) { my ( $cond ) = @_; my $t = time + 10; $loop->loop_once( 0.1 ) until $cond->() or time > $t; ok( $cond->(), "(condition reached in time)" ) or die "timed out" }

# A subclass with its own request class, as SyTest's test server and fake federation
# server are.
package My::Request {
   use base qw( Net::Async::HTTP::Server::Request );
   sub shout { uc shift->path }
}

my @received;
my $server = Net::Async::HTTP::Server->new(
   request_class => "My::Request",
   on_request => sub {
      my ( $srv, $req ) = @_;
      push @received, $req;
      my $path = $req->path;

      if( $path eq "/echo" ) {
         my $body = join "\n",
            "method=" . $req->method,
            "path=" . $req->path,
            "qs=" . ( $req->query_string // "" ),
            "a=" . join( ",", $req->query_param( "a" ) ),
            "form=" . join( ",", $req->query_form ),
            "ct=" . ( $req->header( "Content-Type" ) // "" ),
            "nheaders=" . scalar( grep { ref eq "ARRAY" && @$_ == 2 } $req->headers ),
            "body=" . $req->body,
            "shout=" . $req->shout,
            "uri=" . $req->as_http_request->uri->path_query;
         my $resp = HTTP::Response->new( 200, "OK", [ Content_Type => "text/plain" ], $body );
         $req->respond( $resp );    # no Content-Length: the server adds it
      }
      elsif( $path eq "/chunked" ) {
         $req->respond_chunk_header( HTTP::Response->new( 200, "OK", [ Content_Type => "text/plain" ] ) );
         $req->write_chunk( "hello " );
         $req->write_chunk( "" );    # ignored, would otherwise end the body
         $loop->later( sub { $req->write_chunk( "world" ); $req->write_chunk_eof } );
      }
      elsif( $path eq "/slow" ) {
         # answered after the request behind it, to check pipelined ordering
         $loop->watch_time( after => 0.2, code => sub {
            $req->respond( HTTP::Response->new( 200, "OK", [ Content_Length => 4 ], "slow" ) );
         } );
      }
      elsif( $path eq "/fast" ) {
         $req->respond( HTTP::Response->new( 200, "OK", [ Content_Length => 4 ], "fast" ) );
      }
      else {
         $req->respond( HTTP::Response->new( 404, "Not Found", [ Content_Length => 0 ] ) );
      }
   },
);
$loop->add( $server );

my $listener = $server->listen(
   addr => { family => "inet", socktype => "stream", ip => "127.0.0.1", port => 0 },
)->get;
my $port = $listener->read_handle->sockport;
ok( $port, "listening on 127.0.0.1:$port" );

my $http = Net::Async::HTTP->new( max_connections_per_host => 1 );
$loop->add( $http );

# 1. A POST with a body and a query string, through a real HTTP client.
{
   my $resp = $http->do_request(
      request => do {
         my $r = HTTP::Request->new( POST => "http://127.0.0.1:$port/echo?a=1&a=2&b=x%20y",
            [ Content_Type => "application/json" ], '{"k":"v"}' );
         $r->content_length( 9 );
         $r;
      },
   )->get;
   is( $resp->code, 200, "POST /echo answered 200" );
   my %got = map { split m/=/, $_, 2 } split m/\n/, $resp->content;
   is( $got{method}, "POST", "method" );
   is( $got{path}, "/echo", "path" );
   is( $got{qs}, "a=1&a=2&b=x%20y", "query_string" );
   is( $got{a}, "1,2", "query_param returns every value in list context" );
   is( $got{form}, "a,1,a,2,b,x y", "query_form decodes" );
   is( $got{ct}, "application/json", "header" );
   ok( $got{nheaders} >= 3, "headers returns [name, value] pairs" );
   is( $got{body}, '{"k":"v"}', "body" );
   is( $got{shout}, "/ECHO", "request_class is used" );
   is( $got{uri}, "/echo?a=1&a=2&b=x%20y", "as_http_request" );
   is( $resp->header( "Content-Length" ), length $resp->content, "Content-Length added" );
   isa_ok( $received[-1]->stream, "IO::Async::Stream", "stream" );
   ok( $received[-1]->stream->read_handle->peerport, "stream's handle is the socket" );
}

# 2. Keep-alive: a second request reuses the connection.
{
   my $resp = $http->do_request( uri => "http://127.0.0.1:$port/nothing" )->get;
   is( $resp->code, 404, "unknown path answered 404" );
   is( scalar $server->children, 1, "one connection served both requests" );
}

# 3. A chunked response.
{
   my $resp = $http->do_request( uri => "http://127.0.0.1:$port/chunked" )->get;
   is( $resp->code, 200, "chunked response status" );
   is( $resp->content, "hello world", "chunked response body" );
}

# 4. Raw socket: pipelined requests (answered in order although the first is slower), a
#    chunked request body, then Connection: close.
{
   my $sock = IO::Socket::INET->new( PeerAddr => "127.0.0.1", PeerPort => $port ) or die $!;
   my $in = "";
   my $closed = 0;
   my $stream = IO::Async::Stream->new(
      handle  => $sock,
      on_read => sub { my ( undef, $buf, $eof ) = @_; $in .= $$buf; $$buf = ""; $closed = 1 if $eof; 0 },
   );
   $loop->add( $stream );
   $stream->write(
      "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n" .
      "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n" .
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" .
      "4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\n\r\n" .
      "GET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
   );
   wait_for { $closed };
   my @bodies = $in =~ m/(slow|fast|body=\S*)/g;
   is_deeply( \@bodies, [ "slow", "fast", "body=abcdefg", "fast" ],
      "pipelined responses in request order; chunked request body reassembled" );
   like( $in, qr/^HTTP\/1\.1 200 OK\r\n/, "status line" );
   ok( $closed, "Connection: close closes after the response" );
}

# 5. Garbage gets a 400 and a closed connection.
{
   my $sock = IO::Socket::INET->new( PeerAddr => "127.0.0.1", PeerPort => $port ) or die $!;
   my ( $in, $closed ) = ( "", 0 );
   my $stream = IO::Async::Stream->new(
      handle  => $sock,
      on_read => sub { my ( undef, $buf, $eof ) = @_; $in .= $$buf; $$buf = ""; $closed = 1 if $eof; 0 },
   );
   $loop->add( $stream );
   $stream->write( "this is not http\r\n\r\n" );
   wait_for { $closed };
   like( $in, qr/^HTTP\/1\.1 400 /, "malformed request answered 400" );
}

# 6. Over TLS, as SyTest's servers listen (IO::Async::SSL's listen extension).
SKIP: {
   eval { require IO::Async::SSL; 1 } or skip "IO::Async::SSL not installed", 3;
   system( "openssl version >/dev/null 2>&1" ) == 0 or skip "openssl not installed", 3;
   my $dir = tempdir( CLEANUP => 1 );
   system( "openssl req -x509 -newkey rsa:2048 -nodes -keyout $dir/k.pem -out $dir/c.pem " .
           "-days 1 -subj /CN=localhost >/dev/null 2>&1" ) == 0 or skip "openssl req failed", 3;

   # One listener per server object, as in SyTest.
   my $tls_server = Net::Async::HTTP::Server->new(
      request_class => "My::Request", on_request => $server->{on_request} );
   $loop->add( $tls_server );
   my $tls_listener = $tls_server->listen(
      host => "127.0.0.1", service => 0, socktype => "stream",
      extensions => [ "SSL" ], SSL_key_file => "$dir/k.pem", SSL_cert_file => "$dir/c.pem",
   )->get;
   my $tls_port = $tls_listener->read_handle->sockport;
   my $https = Net::Async::HTTP->new( SSL_verify_mode => 0 );
   $loop->add( $https );
   my $resp = $https->do_request(
      method => "POST", uri => "https://127.0.0.1:$tls_port/echo",
      content => "over tls", content_type => "text/plain",
   )->get;
   is( $resp->code, 200, "TLS request answered" );
   like( $resp->content, qr/^body=over tls$/m, "TLS request body" );
   $resp = $https->do_request( uri => "https://127.0.0.1:$tls_port/chunked" )->get;
   is( $resp->content, "hello world", "TLS chunked response" );
}

# 7. Subclass overriding on_request as a method and make_request, as SyTest's fake
#    federation server does.
{
   package My::Server {
      use base qw( Net::Async::HTTP::Server );
      sub make_request { my $self = shift; my $r = My::Request->new( @_ ); $r->{made_by} = "sub"; $r }
      sub on_request {
         my ( $self, $req ) = @_;
         $req->respond( HTTP::Response->new( 200, "OK", [], $req->{made_by} . ":" . $req->shout ) );
      }
   }
   my $sub = My::Server->new;
   $loop->add( $sub );
   my $l = $sub->listen( addr => { family => "inet", socktype => "stream", ip => "127.0.0.1", port => 0 } )->get;
   my $resp = $http->do_request( uri => "http://127.0.0.1:" . $l->read_handle->sockport . "/x" )->get;
   is( $resp->content, "sub:/X", "on_request method and make_request override" );
}

{
   my $bare = Net::Async::HTTP::Server->new;
   ok( !eval { $loop->add( $bare ); 1 }, "adding a server without on_request croaks" );
   like( $@, qr/on_request/, "... naming on_request" );
}

done_testing;
