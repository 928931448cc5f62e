#!/usr/bin/env bash
# Regenerate the example figures in docs/figures/ from a quarter of the gz1-sdss sample, on a CPU.
#
#   bash docs/figures/make_figures.sh [GZ1_SDSS_FOLDER]
#
# The runs are deliberately tiny (16 px images, 2 epochs), so the figures show what each plot
# looks like, not what a properly trained encoder achieves. Everything happens in a temporary
# ASTROJEPA_HOME; only the PNGs are copied here.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
gz1=${1:-$here/../../../shared/data/gz1-sdss}
astrojepa=${ASTROJEPA:-astrojepa}
python=${PYTHON:-python}
export ASTROJEPA_HOME=$(mktemp -d)
trap 'rm -rf "$ASTROJEPA_HOME"' EXIT

field() { "$python" -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }

# Every fourth catalog row: 1666 galaxies of all four classes, with the catalog's own splits.
"$python" - "$gz1/catalog.csv" "$ASTROJEPA_HOME/quarter.csv" <<'EOF'
import sys
lines = open(sys.argv[1]).read().splitlines()
open(sys.argv[2], "w").write("\n".join([lines[0]] + lines[1::4]) + "\n")
EOF
"$astrojepa" fetch-data folder "$gz1" --catalog "$ASTROJEPA_HOME/quarter.csv" --name gz1 --crop 0.5 --size 16 --json >/dev/null
# A 32 px copy for I-JEPA, so its patch heatmaps have an 8 x 8 grid of 4 px patches.
"$astrojepa" fetch-data folder "$gz1" --catalog "$ASTROJEPA_HOME/quarter.csv" --name gz1-32 --crop 0.5 --size 32 --json >/dev/null

tiny=(--data gz1 --arch vit-t --img-size 16 --patch-size 4 --batch-size 64 --local-views 2 --epochs 2
      --log-every 2 --quiet --json)
lejepa=$("$astrojepa" pretrain "${tiny[@]}" --lam 0.05 | field run_id)
lejepa_high=$("$astrojepa" pretrain "${tiny[@]}" --lam 0.5 | field run_id)
ijepa=$("$astrojepa" pretrain --data gz1-32 --arch vit-t --img-size 32 --patch-size 4 --batch-size 32 --epochs 1 \
        --max-steps 20 --loss ijepa --quiet --json | field run_id)

# The numbers behind the figures go to stdout.
"$astrojepa" probe "$lejepa"
"$astrojepa" probe "$lejepa" --random-init
"$astrojepa" probe "$lejepa" --shots 1,10,100 --seeds 3
"$astrojepa" probe "$lejepa" --shots 1,10,100 --seeds 3 --random-init
"$astrojepa" probe "$lejepa" --fractions 0.1,0.25,0.5,1.0
"$astrojepa" anomalies "$lejepa" --scorer gaussian --top 10 --eval-class merger
"$astrojepa" plot "$lejepa" --latent tsne --json >/dev/null
first_merger=$(awk -F, '$6 == "merger" {print $1; exit}' "$ASTROJEPA_HOME/quarter.csv")
"$astrojepa" similar "$lejepa" --id "$first_merger" --k 9 --json >/dev/null
"$astrojepa" plot "$ijepa" --patches "$first_merger" --json >/dev/null
"$astrojepa" plot compare "$lejepa" "$lejepa_high" --out "$ASTROJEPA_HOME/compare" --json >/dev/null

runs="$ASTROJEPA_HOME/runs"
cp "$runs/$lejepa/plots/"{loss,monitors,confusion-gz1-linear,few-shot-gz1,label-fraction-gz1,latent-gz1-tsne,gz1-anomalies-gaussian}.png "$here/"
cp "$runs/$lejepa/similar/gz1-$first_merger.png" "$here/similar.png"
cp "$runs/$ijepa/plots/patches-gz1-32-$first_merger.png" "$here/patches.png"
cp "$ASTROJEPA_HOME/compare/compare.png" "$here/compare.png"
"$astrojepa" runs compare "$lejepa" "$lejepa_high"
echo "figures written to $here"
