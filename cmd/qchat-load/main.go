// Command qchat-load puts a running QChat server under load and measures
// what it holds: requests and messages per second, send and delivery
// latency, events delivered against expected, errors by code, and the
// server's CPU and memory when it runs on the same machine, with its CPU
// per unit of work (per request, message, delivery or page): the figure
// that compares builds on a machine shared with other work.
//
// It creates its own users and rooms through the API, seals every message
// for real with pqcrypto, and connects to nothing but the URLs it is given:
//
//	qchat-load --server http://127.0.0.1:8080 --scenario dm --duration 10s
//	qchat-load --server http://127.0.0.1:8080,http://127.0.0.1:8081 --scenario fanout --subscribers 2000 --rooms 20 --rate 200
//	qchat-load --server http://127.0.0.1:8080 --scenario dm --send-over ws   # mutations over an open websocket
//
// A large history is seeded once and measured many times: the first run
// with --history-state seeds and saves the room to the file, the later
// ones (against the same database) reuse it without seeding:
//
//	qchat-load --server http://127.0.0.1:8080 --scenario history --history-filler 990000 --history-state /tmp/history.json
//
// Run the server with RATE_LIMIT_MAX=0 USER_RATE_LIMIT_RATE=0 AUTH_RATE_LIMIT_MAX=0
// WS_INIT_RATE_LIMIT=0 WS_MAX_CONNECTIONS_PER_IP=0 BCRYPT_COST=4, or the
// limits meant for the internet stop the load after a few requests.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "qchat-load:", err)
		os.Exit(1)
	}
}
