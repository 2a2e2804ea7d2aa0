# SyTest implementation module for Glia: `run-tests.pl -I Glia`.
#
# Loaded through SYTEST_PLUGINS=<this repository>/sytest-compat: SyTest treats every
# directory in SYTEST_PLUGINS as a plugin and loads <plugin>/lib/SyTest/HomeserverFactory/
# *.pm, here sytest-compat/plugin/lib/...; no change to SyTest.
# Written for Glia; not part of SyTest.

use strict;
use warnings;

require SyTest::Homeserver::Glia;

package SyTest::HomeserverFactory::Glia;
use base qw( SyTest::HomeserverFactory );

sub _init
{
   my $self = shift;

   $self->{args} = {
      glia_binary  => $ENV{GLIA_BINARY} // "../glia/target/release/glia",
      glia_log     => $ENV{GLIA_LOG} // "info",
      print_output => 0,
   };

   $self->SUPER::_init( @_ );
}

# Tests marked implementation_specific => [...] run only for the implementations they
# name; Glia is none of them.
sub implementation_name
{
   return "glia";
}

sub get_options
{
   my $self = shift;

   return (
      'glia-binary=s' => \$self->{args}{glia_binary},
      'glia-log=s'    => \$self->{args}{glia_log},
      'S|server-log+' => \$self->{args}{print_output},
      $self->SUPER::get_options(),
   );
}

sub print_usage
{
   print STDERR <<'USAGE';
       --glia-binary PATH       - the glia binary to run (default: $GLIA_BINARY, else
                                  ../glia/target/release/glia)

       --glia-log FILTER        - Glia's log filter (GLIA_LOG), default info; server N
                                  logs to server-N/glia.log in the work directory

   -S, --server-log             - also copy the servers' log lines to stderr
USAGE
}

sub create_server
{
   my $self = shift;
   my %params = ( @_, %{ $self->{args} } );

   return SyTest::Homeserver::Glia->new( %params );
}

1;
