#!/usr/bin/perl
# sytest-compat/summarize: per-area table, passing list, regressions, incomplete runs.
use strict;
use warnings;
use utf8;
use FindBin;

use Test::More;
use File::Temp qw( tempdir );

my $summarize = "$FindBin::Bin/../summarize";

sub write_file
{
   my ( $path, $text, $layer ) = @_;
   open my $fh, ">" . ( $layer // ":encoding(UTF-8)" ), $path or die "$path: $!";
   print $fh $text;
   close $fh;
}

sub read_file
{
   my ( $path ) = @_;
   open my $fh, "<:encoding(UTF-8)", $path or die "$path: $!";
   local $/;
   return scalar <$fh>;
}

# SyTest's TAP (stdout, UTF-8) for a run with -W: one whitelisted pass, one whitelisted
# failure, expected failures, a multi-test, skips, and a non-ASCII name.
my $tap = <<'TAP';
# Started test HTTPS Server at localhost:8800
ok 1 GET /register yields a set of flows
  ok 1 step one (Multi thing)
  ok 2 step two (Multi thing)
  1..2
ok 2 Multi thing (2 subtests)
not ok 3 Can login
# Started: 2026-01-01 00:00:00.000
# Ended: 2026-01-01 00:00:01.000
# Test failed
ok 4 (expected fail) Can register é user # TODO passed but expected fail
not ok 5 (expected fail) Can create a room # TODO expected fail
# reason
ok 6 Room thing # skip lack of can_create_room
ok 7 Name with # hash
not ok 8 (expected fail) Federation thing (3 subtests) # TODO expected fail
ok 9 Twin name
not ok 10 Twin name
ok 11 (expected fail) Same twice # TODO passed but expected fail
ok 12 (expected fail) Same twice # TODO passed but expected fail
1..12
TAP

# SyTest's progress (stderr, bytes as they come: here Latin-1 and a warning mid-line).
my $progress = <<"LOG";
tests/10apidoc/01register.pl:
    Test 1 GET /register yields a set of flows... Certificate request self-signature ok
OK
    Test 2 Multi thing... OK
tests/10apidoc/02login.pl:
    Test 3 Can login... FAIL
tests/11register.pl:
    Test 4 Can register \xE9 user... OK
tests/30rooms/01state.pl:
    Test 5 Can create a room... WARN: something
EXPECTED FAIL
    Test 6 Room thing... SKIP
tests/90jira/SYT-1.pl:
    Test 7 Name with # hash... OK
tests/50federation/00prepare.pl:
    Test 8 Federation thing... EXPECTED FAIL
tests/61push/01message-pushed.pl:
    Test 9 Twin name... OK
    Test 10 Twin name... FAIL
    Test 11 Same twice... OK
    Test 12 Same twice... OK
LOG

my $dir = tempdir( CLEANUP => 1 );
write_file( "$dir/results.tap", $tap );
write_file( "$dir/progress.log", $progress, ":raw" );
write_file( "$dir/whitelist.txt", "# comment\nGET /register yields a set of flows\nCan login\n\nRoom thing\nGone test\nTwin name\n" );

sub run_summarize
{
   my ( @extra ) = @_;
   my $cmd = join " ", map { "'$_'" } $^X, $summarize,
      "--tap", "$dir/results.tap", "--progress", "$dir/progress.log", "--out", $dir, @extra;
   my $output = `$cmd 2>&1`;
   return ( $? >> 8, $output );
}

{
   my ( $rc, $output ) = run_summarize( "--whitelist", "$dir/whitelist.txt" );
   is( $rc, 1, "regressions: exit 1" ) or diag $output;

   my $summary = read_file( "$dir/summary.txt" );
   like( $summary, qr/^\| 10apidoc \| 3 \| 2 \| 1 \| 0 \|$/m, "10apidoc row: two files, one area" );
   like( $summary, qr/^\| 11register \| 1 \| 1 \| 0 \| 0 \|$/m, "top-level file is its own area" );
   like( $summary, qr/^\| 30rooms \| 2 \| 0 \| 1 \| 1 \|$/m, "30rooms row counts a skip" );
   like( $summary, qr/^\| 90jira \| 1 \| 1 \| 0 \| 0 \|$/m, "90jira row" );
   like( $summary, qr/^\| 50federation \| 1 \| 0 \| 1 \| 0 \|$/m, "expected failure counts as failed" );
   like( $summary, qr/^\| 61push \| 4 \| 3 \| 1 \| 0 \|$/m, "61push row" );
   like( $summary, qr/^\| \*\*total\*\* \| \*\*12\*\* \| \*\*7\*\* \| \*\*4\*\* \| \*\*1\*\* \|$/m, "total row" );
   like( $summary, qr/\n7 passed, 4 failed, 1 skipped\n\z/, "ends in N passed, N failed, N skipped" );

   is( read_file( "$dir/passing.txt" ),
      "GET /register yields a set of flows\nMulti thing\nCan register é user\nSame twice\n",
      "passing list: names without markers or subtest counts, once each; '#' names and " .
      "names of which one test failed left out" );
   like( $output, qr/whitelist cannot hold: Name with # hash/, "... and said so" );

   is( read_file( "$dir/regressions.txt" ),
      "Can login  [failed]\nRoom thing  [skipped: lack of can_create_room]\n" .
      "Gone test  [not run: renamed or removed from SyTest?]\nTwin name  [failed]\n",
      "regressions: failed, skipped and vanished listed tests" );
   like( $output, qr/REGRESSIONS: 4 test/, "regressions reported" );
}

{
   write_file( "$dir/whitelist.txt", "GET /register yields a set of flows\nMulti thing\n" );
   my ( $rc, $output ) = run_summarize( "--whitelist", "$dir/whitelist.txt" );
   is( $rc, 0, "no regressions: exit 0" ) or diag $output;
   is( read_file( "$dir/regressions.txt" ), "", "empty regressions file" );
}

{
   write_file( "$dir/whitelist.txt", "Multi thing\nNot in this part\n" );
   my ( $rc ) = run_summarize( "--whitelist", "$dir/whitelist.txt", "--partial" );
   is( $rc, 0, "--partial: listed tests that did not run are not regressions" );
   ( $rc ) = run_summarize( "--whitelist", "$dir/whitelist.txt" );
   is( $rc, 1, "... but they are in a full run" );
}

{
   ( my $cut = $tap ) =~ s/^1\.\.12\n//m;
   write_file( "$dir/results.tap", $cut );
   my ( $rc, $output ) = run_summarize();
   is( $rc, 2, "no plan line: incomplete run, exit 2" );
   like( $output, qr/INCOMPLETE RUN: 12 results and no final plan line/, "... said so" );

   write_file( "$dir/results.tap", "# Starting Homeserver\n" );
   ( $rc, $output ) = run_summarize();
   isnt( $rc, 0, "no results at all fails" );
   like( $output, qr/No test results/, "... with a message" );
}

done_testing;
