# How SyTest starts one Glia server: writes its homeserver.yaml and TLS certificate into
# the server's directory, starts `glia serve`, and waits until its port accepts
# connections. Written for Glia; not part of SyTest.
#
# Each server has one port, which is both its server name (localhost:<port>) and a TLS
# listener serving the client, federation, key and media APIs with a certificate from
# SyTest's test CA (keys/ca.crt, via SyTest::SSL). SyTest's clients do not verify it;
# Glia is told to trust that CA for its own outbound connections.

use strict;
use warnings;

package SyTest::Homeserver::Glia;
use base qw( SyTest::Homeserver );

use Carp;
use Cwd qw( getcwd );
use File::Path qw( remove_tree );
use JSON ();
use Socket qw( getaddrinfo getnameinfo AI_PASSIVE NI_NUMERICHOST NIx_NOSERV SOCK_STREAM );

use SyTest::SSL qw( ensure_ssl_key create_ssl_cert );

sub _init
{
   my $self = shift;
   my ( $args ) = @_;

   $self->{$_} = delete $args->{$_} for qw( glia_binary glia_log print_output );

   defined $self->{glia_binary} or croak "Need a glia_binary";
   -x $self->{glia_binary} or
      croak "Glia binary $self->{glia_binary} is not executable; build it or pass --glia-binary";

   $self->SUPER::_init( $args );

   my $idx = $self->{hs_index};
   $self->{ports} = {
      glia => main::alloc_port( "glia[$idx]" ),
   };
   $self->{paths} = {};
}

sub configure
{
   my $self = shift;
   my %params = @_;

   exists $params{$_} and $self->{$_} = delete $params{$_} for qw( print_output );

   $self->SUPER::configure( %params );
}

sub secure_port     { $_[0]->{ports}{glia} }
sub server_name     { $_[0]->{bind_host} . ":" . $_[0]->secure_port }
sub federation_host { $_[0]->{bind_host} }
sub federation_port { $_[0]->secure_port }
sub public_baseurl  { "https://$_[0]->{bind_host}:" . $_[0]->secure_port }

# Glia's bind_addresses are IP addresses; resolve SyTest's --bind-host (default
# "localhost") to every address it has, so clients reach the server over IPv4 or IPv6.
sub _bind_addresses
{
   my $self = shift;
   my $host = $self->{bind_host};

   my ( $err, @res ) = getaddrinfo( $host, undef, { socktype => SOCK_STREAM, flags => AI_PASSIVE } );
   croak "Cannot resolve bind host $host: $err" if $err;

   my %seen;
   my @ips = grep { !$seen{$_}++ } map {
      my ( $e, $ip ) = getnameinfo( $_->{addr}, NI_NUMERICHOST, NIx_NOSERV );
      $e ? () : ( $ip );
   } @res;
   @ips or croak "Bind host $host has no addresses";
   return \@ips;
}

sub _glia_config
{
   my $self = shift;

   my $hs_dir = $self->{hs_dir};
   my $cwd = getcwd;    # the SyTest checkout: run-tests.pl runs from there

   return {
      server_name    => $self->server_name,
      public_baseurl => $self->public_baseurl,

      listeners => [ {
         port           => $self->secure_port,
         bind_addresses => $self->_bind_addresses,
         type           => "http",
         tls            => JSON::true,
         resources      => [ { names => [qw( client federation keys media )] } ],
      } ],
      tls_certificate_path => $self->{paths}{cert_file},
      tls_private_key_path => $self->{paths}{key_file},

      signing_key_path => "$hs_dir/signing.key",
      database => {
         name => "sqlite3",
         # A test server need not survive power loss.
         args => { database => $self->{paths}{db}, synchronous => "normal" },
      },
      media_store_path => "$hs_dir/media_store",

      # SyTest registers its users with single-stage m.login.dummy, and admins through
      # shared-secret registration with this secret.
      enable_registration                      => JSON::true,
      enable_registration_without_verification => JSON::true,
      allow_guest_access                       => JSON::true,
      registration_shared_secret               => "reg_secret",

      # As SyTest configures Synapse: the room directory is readable without a token.
      allow_public_rooms_without_auth => JSON::true,
      # ... and other servers may read it (SyTest turns this on for Synapse too).
      allow_public_rooms_over_federation => JSON::true,

      # Test-setup keys, never for production; Glia logs a warning for each at start-up.
      federation_custom_ca_list      => [ "$cwd/keys/ca.crt" ],
      federation_verify_certificates => JSON::true,
      ip_range_whitelist             => [ "127.0.0.0/8", "::1/128" ],
      rc_disabled                    => JSON::true,

      # SyTest's own captcha verifier (Synapse gets the same keys from SyTest).
      $self->{recaptcha_config} ? (
         recaptcha_siteverify_api => $self->{recaptcha_config}{siteverify_api},
         recaptcha_public_key     => $self->{recaptcha_config}{public_key},
         recaptcha_private_key    => $self->{recaptcha_config}{private_key},
      ) : (),

      # SyTest writes appservice registrations for server-0 only.
      $self->{app_service_config_files}
         ? ( app_service_config_files => $self->{app_service_config_files} ) : (),
   };
}

sub start
{
   my $self = shift;

   my $hs_dir = $self->{hs_dir};
   my $idx = $self->{hs_index};
   my $output = $self->{output};

   # Every run starts from an empty server.
   my $db = $self->{paths}{db} = "$hs_dir/homeserver.db";
   unlink $db, "$db-wal", "$db-shm", "$db-journal";
   remove_tree( "$hs_dir/media_store" ) if -d "$hs_dir/media_store";

   $self->{paths}{cert_file} = "$hs_dir/tls.crt";
   $self->{paths}{key_file}  = "$hs_dir/tls.key";
   ensure_ssl_key( $self->{paths}{key_file} );
   create_ssl_cert( $self->{paths}{cert_file}, $self->{paths}{key_file}, $self->{bind_host} );

   my $config = $self->{paths}{config} =
      $self->write_yaml_file( "homeserver.yaml" => $self->_glia_config );
   my $log = $self->{paths}{log} = "$hs_dir/glia.log";
   open my $logfh, ">", $log or die "Cannot create $log - $!";
   close $logfh;

   # `exec` so that SyTest's SIGINT at the end reaches Glia itself, which then shuts down
   # gracefully. The log goes to a file; -S also copies it to stderr.
   my @command = (
      "sh", "-c", 'exec "$0" serve -c "$1" >>"$2" 2>&1',
      $self->{glia_binary}, $config, $log,
   );
   $output->diag( "Starting Glia server-$idx on port " . $self->secure_port .
      ": $self->{glia_binary} serve -c $config" );

   my $fut = $self->_start_process_and_await_connectable(
      setup => [ env => {
         PATH     => $ENV{PATH},
         GLIA_LOG => $self->{glia_log},
         NO_COLOR => 1,
      } ],
      command      => \@command,
      connect_host => $self->{bind_host},
      connect_port => $self->secure_port,
      name         => "glia-$idx",
   );

   $self->_tail_log_to_stderr if $self->{print_output};

   return $fut->on_fail( sub {
      # Say why: the end of the server's log.
      if( open my $fh, "<", $log ) {
         my @lines = <$fh>;
         splice @lines, 0, -30 if @lines > 30;
         chomp @lines;
         $output->diag( "[glia-$idx] $_" ) for @lines;
      }
      warn "Glia server-$idx did not start; its log is $log\n";
   })->on_done( sub {
      $output->diag( "Glia server-$idx is up" );
   });
}

sub _tail_log_to_stderr
{
   my $self = shift;
   my $idx = $self->{hs_index};

   require IO::Async::FileStream;
   $self->add_child( IO::Async::FileStream->new(
      filename => $self->{paths}{log},
      on_read  => sub {
         my ( undef, $buffref ) = @_;
         while( $$buffref =~ s/^(.*)\n// ) {
            print STDERR "\e[1;35m[glia-$idx]\e[m: $1\n";
         }
         return 0;
      },
   ) );
}

1;
