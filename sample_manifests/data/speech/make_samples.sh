#!/usr/bin/env bash
# Regenerate the synthetic English speech samples and expected.csv in this folder.
#
# Needs Debian's espeak-ng and sox (apt-get install -y espeak-ng sox); the WAVs are
# committed, so this is only for changing the sentences. Output is byte-identical
# from run to run: espeak-ng is deterministic and `sox -R` seeds its dither.
#
# Recipe (see the offline speech notes): voice en-us+m1 at 160 words per minute,
# then sox to 16 kHz mono 16-bit WITH dither; without dither pocketsphinx does far
# worse. The sentences are ones pocketsphinx's bundled model gets right.
set -euo pipefail
cd "$(dirname "$0")"

sentences=(
  "hello world"
  "please open the door"
  "one two three four five"
  "good morning everyone"
  "i would like a cup of coffee"
  "where is the train station"
  "how are you today"
  "can you help me please"
  "i love reading books"
  "the music is too loud"
)

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "file,text" > expected.csv
for text in "${sentences[@]}"; do
  name="${text// /_}.wav"
  espeak-ng -v en-us+m1 -s 160 -w "$tmp/raw.wav" "$text"
  sox -R "$tmp/raw.wav" -r 16000 -c 1 -b 16 "$name"
  echo "$name,$text" >> expected.csv
done
