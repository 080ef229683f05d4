// Command qchat is QChat's command-line client: keys are generated and kept
// on this machine, every message and file is sealed here before it leaves
// and opened here after it arrives. Run "qchat help" for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil {
		var f *failure
		if errors.As(err, &f) {
			f.print(os.Stderr)
		} else {
			fmt.Fprintln(os.Stderr, "qchat:", err)
		}
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
