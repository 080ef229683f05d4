#!/usr/bin/env bash
# Refetches the explorer's third-party files: GraphiQL and React, at the exact
# versions and integrity hashes of package-lock.json, from the npm registry
# that npm is configured with. Only their prebuilt browser files are kept
# (GraphiQL's UMD bundle carries its own copy of graphql-js), together with
# their licences, so nothing is built here and the result is the same
# wherever it runs.
#
#   internal/explorer/update.sh [OUTDIR]     (default: internal/explorer/static/vendor)
#
# `make graphiql` runs it; a test compares its output with the committed files.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/static/vendor}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cp "$here/package.json" "$here/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null)

m=$work/node_modules
mkdir -p "$out"
# The source map comment names a file that is not shipped: browsers' developer
# tools would ask the server for it and log a 404.
sed '/^\/\/# sourceMappingURL=/d' "$m/graphiql/graphiql.min.js" >"$out/graphiql.min.js"
cp "$m/graphiql/graphiql.min.css" "$out/graphiql.min.css"
cp "$m/react/umd/react.production.min.js" "$out/react.production.min.js"
cp "$m/react-dom/umd/react-dom.production.min.js" "$out/react-dom.production.min.js"
cp "$m/graphiql/LICENSE" "$out/LICENSE-graphiql.txt"
cp "$m/react/LICENSE" "$out/LICENSE-react.txt"
cp "$m/react-dom/LICENSE" "$out/LICENSE-react-dom.txt"
for p in graphiql react react-dom; do
	node -e 'const p = require(process.argv[1]); console.log(p.name + "@" + p.version)' "$m/$p/package.json"
done >"$out/VERSIONS.txt"
