package Crypt::Ed25519;

# A small stand-in for CPAN's Crypt::Ed25519, which Debian does not package. It offers
# the part of that module's API that SyTest calls (the "eddsa_*" functions and `verify`),
# implemented over CryptX's Crypt::PK::Ed25519 (Debian: libcryptx-perl).
#
# Keys and signatures are raw octet strings, as in the original: a secret key is the
# 32-octet RFC 8032 seed, a public key 32 octets, a signature 64 octets.
#
# Written for Glia's SyTest runner (sytest-compat/); tested by sytest-compat/t/ed25519.t.

use strict;
use warnings;

use Carp qw( croak );
use Crypt::PK::Ed25519;
use Crypt::PRNG qw( random_bytes );

our $VERSION = '1.05';    # the CPAN version whose API this mirrors

use Exporter qw( import );
our @EXPORT_OK = qw(
   eddsa_secret_key eddsa_public_key eddsa_sign eddsa_verify eddsa_verify_croak
   verify verify_croak
);
our %EXPORT_TAGS = ( all => \@EXPORT_OK );

sub _check_len
{
   my ( $what, $value, $len ) = @_;
   defined $value or croak "Crypt::Ed25519: $what must be defined";
   utf8::downgrade( $value, 1 ) or croak "Crypt::Ed25519: $what must be an octet string";
   length( $value ) == $len or croak "Crypt::Ed25519: $what must be $len octets long";
}

sub _private_from_seed
{
   my ( $secret_key ) = @_;
   _check_len( "secret key", $secret_key, 32 );
   return Crypt::PK::Ed25519->new->import_key_raw( $secret_key, "private" );
}

# $secret_key = eddsa_secret_key
sub eddsa_secret_key
{
   return random_bytes( 32 );
}

# $public_key = eddsa_public_key $secret_key
sub eddsa_public_key
{
   my ( $secret_key ) = @_;
   return _private_from_seed( $secret_key )->export_key_raw( "public" );
}

# $signature = eddsa_sign $message, $public_key, $secret_key
#
# The public key is checked for size only: CryptX derives it from the secret key.
sub eddsa_sign
{
   my ( $message, $public_key, $secret_key ) = @_;
   _check_len( "public key", $public_key, 32 );
   utf8::downgrade( $message, 1 ) or croak "Crypt::Ed25519: message must be an octet string";
   return _private_from_seed( $secret_key )->sign_message( $message );
}

# $valid = eddsa_verify $message, $public_key, $signature
#
# Like the original, octets after the first 64 of the signature are ignored.
sub eddsa_verify
{
   my ( $message, $public_key, $signature ) = @_;
   _check_len( "public key", $public_key, 32 );
   defined $signature or croak "Crypt::Ed25519: signature must be defined";
   utf8::downgrade( $signature, 1 ) or croak "Crypt::Ed25519: signature must be an octet string";
   length( $signature ) >= 64 or croak "Crypt::Ed25519: signature must be 64 octets long";
   utf8::downgrade( $message, 1 ) or croak "Crypt::Ed25519: message must be an octet string";

   my $pk = eval { Crypt::PK::Ed25519->new->import_key_raw( $public_key, "public" ) }
      or return 0;
   return Crypt::PK::Ed25519::verify_message( $pk, substr( $signature, 0, 64 ), $message ) ? 1 : 0;
}

sub eddsa_verify_croak
{
   eddsa_verify( @_ ) or croak "Crypt::Ed25519::eddsa_verify_croak: signature verification failed";
   return 1;
}

# Verification is the same for both of the original module's key formats.
*verify = \&eddsa_verify;

sub verify_croak
{
   verify( @_ ) or croak "Crypt::Ed25519::verify_croak: signature verification failed";
   return 1;
}

1;
