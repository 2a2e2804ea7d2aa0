#!/usr/bin/perl
# Crypt::Ed25519 stand-in: RFC 8032 section 7.1 test vectors, round trips, bad input.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../perl5";

use Test::More;

use Crypt::Ed25519;

my %vectors = (
   # TEST 1: empty message
   1 => {
      secret => "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
      public => "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
      message => "",
      signature => "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                 . "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
   },
   # TEST 2: one octet
   2 => {
      secret => "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
      public => "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
      message => "72",
      signature => "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
                 . "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
   },
);

foreach my $n ( sort keys %vectors ) {
   my $v = $vectors{$n};
   my ( $sk, $pk, $msg, $sig ) = map { pack "H*", $_ } @{$v}{qw( secret public message signature )};

   is( unpack( "H*", Crypt::Ed25519::eddsa_public_key( $sk ) ), $v->{public},
      "RFC 8032 test $n: public key from secret key" );
   is( unpack( "H*", Crypt::Ed25519::eddsa_sign( $msg, $pk, $sk ) ), $v->{signature},
      "RFC 8032 test $n: signature" );
   ok( Crypt::Ed25519::eddsa_verify( $msg, $pk, $sig ), "RFC 8032 test $n: eddsa_verify accepts" );
   ok( Crypt::Ed25519::verify( $msg, $pk, $sig ), "RFC 8032 test $n: verify accepts" );

   my $bad = $sig;
   substr( $bad, 10, 1 ) ^= "\x01";
   ok( !Crypt::Ed25519::verify( $msg, $pk, $bad ), "RFC 8032 test $n: flipped bit rejected" );
   ok( !Crypt::Ed25519::verify( "$msg!", $pk, $sig ), "RFC 8032 test $n: other message rejected" );
   ok( Crypt::Ed25519::verify( $msg, $pk, $sig . "garbage" ),
      "RFC 8032 test $n: octets after the 64th are ignored, as in the original" );
}

# Fresh keys round-trip, as SyTest::Crypto::ed25519_nacl_keypair uses them.
{
   my $sk = Crypt::Ed25519::eddsa_secret_key();
   is( length $sk, 32, "eddsa_secret_key is 32 octets" );
   isnt( $sk, Crypt::Ed25519::eddsa_secret_key(), "eddsa_secret_key is random" );
   my $pk = Crypt::Ed25519::eddsa_public_key( $sk );
   is( length $pk, 32, "public key is 32 octets" );
   my $msg = '{"a":1,"b":"\u00e9"}';
   my $sig = Crypt::Ed25519::eddsa_sign( $msg, $pk, $sk );
   is( length $sig, 64, "signature is 64 octets" );
   ok( Crypt::Ed25519::eddsa_verify( $msg, $pk, $sig ), "round trip verifies" );
   ok( Crypt::Ed25519::eddsa_verify_croak( $msg, $pk, $sig ), "verify_croak returns true" );
   my $other = Crypt::Ed25519::eddsa_public_key( Crypt::Ed25519::eddsa_secret_key() );
   ok( !Crypt::Ed25519::eddsa_verify( $msg, $other, $sig ), "another key's signature rejected" );
   ok( !eval { Crypt::Ed25519::verify_croak( $msg, $other, $sig ); 1 }, "verify_croak croaks" );
}

# Bad sizes croak instead of silently failing.
ok( !eval { Crypt::Ed25519::eddsa_public_key( "short" ); 1 }, "short secret key croaks" );
like( $@, qr/secret key must be 32 octets/, "... naming the problem" );
ok( !eval { Crypt::Ed25519::verify( "m", "x" x 31, "s" x 64 ); 1 }, "short public key croaks" );
ok( !eval { Crypt::Ed25519::verify( "m", "x" x 32, "s" x 63 ); 1 }, "short signature croaks" );
ok( !eval { Crypt::Ed25519::eddsa_sign( "\x{263a}", "x" x 32, "y" x 32 ); 1 }, "wide-character message croaks" );

# The export list, for `use Crypt::Ed25519 qw( ... )`.
Crypt::Ed25519->import( qw( eddsa_verify ) );
ok( defined &main::eddsa_verify, "functions can be imported" );

done_testing;
