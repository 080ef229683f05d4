// Package e2e holds the end-to-end check of the API contract from outside
// the server: a client written only from docs/PROTOCOL.md and
// docs/PROTOCOL-V2.md, the API contract and the sealed envelope of both
// versions (Apollo Client with graphql-ws in Node, in node/), reproduces the
// fixed vectors and runs against the built server binary on SQLite and on
// PostgreSQL.
// See README.md; run it with `go test ./e2e/`.
package e2e
