//go:build race

package main

// raceEnabled makes the end-to-end test build the server with -race too,
// which reuses the packages this test run already compiled.
const raceEnabled = true
