// Package client is the Go SDK for QChat: a typed GraphQL client for the
// whole API contract, websocket subscriptions (graphql-transport-ws), and the
// end-to-end encryption on top (sealing with pqcrypto before a message or a
// file leaves the process, opening after it arrives), so that callers never
// handle envelopes unless they want to.
//
// Everything the client sends is signed with the caller's identity key
// (envelope version 2: WithIdentity, Register), and every key it seals to and
// every signature it opens is checked against what the caller trusts, not
// against what the server presents: the caller's Pins (trust.go), which
// remember each user's identity key from first use, whether it was verified
// by safety number, and the newest certified key seen.
//
// The operations live in operations.graphql; generated.go is generated from
// them and the server's schema (../graph/*.graphqls) by genqlient:
//
//	go generate ./client
//
// and must not be edited by hand.
package client

//go:generate go run github.com/Khan/genqlient genqlient.yaml
