// Package models holds QChat's domain types: the bun models stored in the database,
// the live events carried by the broker, and the domain errors every layer shares.
package models
