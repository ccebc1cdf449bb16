#!/bin/sh
# Renders media/icon.png (the Marketplace icon, 128×128) from media/icon.svg (the activity-bar icon): the same
# grid, in the heatmap's dark-theme blue (colorScale.ts) on a dark tile, since a Marketplace icon has no theme
# colour to inherit. Needs rsvg-convert (Debian: apt-get install librsvg2-bin).
set -eu
cd "$(dirname "$0")/.."
{
  echo '<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24" color="rgb(67,147,195)">'
  echo '<rect width="24" height="24" rx="4" fill="#1e1e1e"/>'
  cat media/icon.svg
  echo '</svg>'
} | rsvg-convert --width 128 --height 128 --format png --output media/icon.png
