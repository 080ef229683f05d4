// Package web holds QChat's web side, built with npm rather than Go: the
// TypeScript client library in lib/ (the envelope, Apollo links, typed
// operations, key storage) and the web app built on it. Its Go test runs
// their checks, so that `make test` covers them.
package web
