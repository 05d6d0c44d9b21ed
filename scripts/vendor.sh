#!/bin/sh
# Vendor the web UI's third-party front-end files from the npm registry: pinned versions, checked
# against pinned integrity hashes, copied with their licenses under src/truthset/ui/static/vendor/.
# Run it again after changing a pin below; commit what it writes. Needs npm and node.
#
#   scripts/vendor.sh          fetch, check and (re)write the vendored files
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENDOR="$ROOT/src/truthset/ui/static/vendor"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# vendor NAME PACKAGE VERSION INTEGRITY FILE...: the FILEs of PACKAGE@VERSION into vendor/NAME/
vendor() {
    name=$1 package=$2 version=$3 integrity=$4
    shift 4
    # npm names the tarball itself (a scoped @scope/name becomes scope-name-version.tgz)
    tarball="$WORK/$(cd "$WORK" && npm pack --silent "$package@$version" | tail -n 1)"
    actual=$(node -e 'const c = require("crypto"), f = require("fs");
        process.stdout.write("sha512-" + c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$tarball")
    if [ "$actual" != "$integrity" ]; then
        echo "vendor.sh: $package@$version has integrity $actual, pinned $integrity" >&2
        exit 1
    fi
    mkdir -p "$WORK/$name"
    tar -xzf "$tarball" -C "$WORK/$name"
    rm -rf "${VENDOR:?}/$name"
    mkdir -p "$VENDOR/$name"
    for file in "$@"; do
        mkdir -p "$(dirname "$VENDOR/$name/$file")"
        cp "$WORK/$name/package/$file" "$VENDOR/$name/$file"
    done
    printf '%s@%s\n%s\n' "$package" "$version" "$integrity" >"$VENDOR/$name/VERSION"
    echo "vendored $package@$version into ${VENDOR#"$ROOT"/}/$name"
}

# Swagger UI, for the API's interactive documentation at /api/v1/docs (Apache-2.0).
vendor swagger-ui swagger-ui-dist 5.35.0 \
    sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ== \
    swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css LICENSE NOTICE

# Markdown in model responses and conversations (docs/questions.md): marked parses it (MIT), DOMPurify
# sanitises the HTML it makes (Apache-2.0 or MPL-2.0), highlight.js colours code blocks (BSD-3-Clause).
vendor marked marked 18.2.1 \
    sha512-ii4bxCTCqqwpT86XZWgJNs+ZnAIZksmLGYMViWA7PDIXYIeNo1x6cDdX3JOip9NM/cI6p8z57FxliACboTruMA== \
    lib/marked.esm.js LICENSE
vendor dompurify dompurify 3.5.0 \
    sha512-LYC0ZkE8P1V42JsRYTwMdme/2ET8SpOc5AA2eOFjP/IadvRd2fwiT4TVz5vkfy0XUx12aS2UaRkTnfVPNOv9vw== \
    dist/purify.es.mjs LICENSE
vendor highlight.js @highlightjs/cdn-assets 11.12.0 \
    sha512-KvOKXODaiFmId9xaq3xc5xCL66wVLUuOngDbO9B/kewbFTqdGbn2nJxNhN3H5R1cgDTVj6R8vH0zgiNDEGjpDw== \
    es/highlight.min.js styles/github.min.css LICENSE

# Annotorious, the image-annotation library of the `boxes` and `polygons` widgets (BSD-3-Clause): its
# ES module build (one file: svelte, rbush, dequal, simplify-js, uuid, nanoid, nanoevents, nanostores
# and @annotorious/core bundled in) and its CSS. The npm package ships no license file: the project's
# own (from its repository) is written beside it, with the bundled packages' licenses in NOTICE.
vendor annotorious @annotorious/annotorious 3.8.10 \
    sha512-s1tWrJp//tJNNu5qKzZilXooMKGwztUzWzWuTqwM2+xfUpsG/XimrgXGhfEuvD0Koy12NcBqNZ83bqg+iCossg== \
    dist/annotorious.es.js dist/annotorious.css
cat >"$VENDOR/annotorious/LICENSE" <<'LICENSE'
BSD 3-Clause License

Copyright (c) 2020, Pelagios Network
All rights reserved.

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

3. Neither the name of the copyright holder nor the names of its
   contributors may be used to endorse or promote products derived from
   this software without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
LICENSE
cat >"$VENDOR/annotorious/NOTICE" <<'NOTICE'
annotorious.es.js bundles these packages from the npm registry, under their own licenses:
@annotorious/core (BSD-3-Clause, as above), svelte (MIT), rbush (MIT), dequal (MIT),
simplify-js (BSD-2-Clause), uuid (MIT), nanoid (MIT), nanoevents (MIT), nanostores (MIT).
NOTICE

# uPlot, the charts of the project dashboard (MIT): its ES module build and its CSS. It draws on a
# canvas and sets styles through the DOM (element.style), which the strict CSP allows.
vendor uplot uplot 1.6.32 \
    sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw== \
    dist/uPlot.esm.js dist/uPlot.min.css LICENSE
