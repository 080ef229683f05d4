// Package client is the Go SDK for QChat: a typed GraphQL client for the
// whole API contract, websocket subscriptions (graphql-transport-ws), and the
// end-to-end encryption on top (sealing with pqcrypto before a message or a
// file leaves the process, opening after it arrives), so that callers never
// handle envelopes unless they want to.
//
// The operations live in operations.graphql; generated.go is generated from
// them and the server's schema (../graph/*.graphqls) by genqlient:
//
//	go generate ./client
//
// and must not be edited by hand.
package client

//go:generate go run github.com/Khan/genqlient genqlient.yaml
