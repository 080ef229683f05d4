package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// errUsage marks a mistake in the command line (exit status 2).
var errUsage = errors.New("usage")

const serverUsage = `qchat-server — the QChat GraphQL server

Usage:
  qchat-server [serve]                 start the server (the default)
  qchat-server migrate up|down|status  manage the database schema
  qchat-server version                 print the version (also --version)
  qchat-server help                    this text (also --help, -h)

Settings come from environment variables (or a .env file), not flags:
  PORT=19381 DATA_DIR=./data qchat-server
README.md lists every variable with its default.
`

// commandLine answers what needs no configuration (version, help) and
// refuses flags: every setting is an environment variable, and a flag that
// was silently ignored would leave the server running with another value
// than the one asked for. done is true when the command was answered.
func commandLine(args []string, stdout io.Writer) (done bool, err error) {
	if len(args) > 0 {
		switch args[0] {
		case "version", "--version", "-version", "-v":
			fmt.Fprintln(stdout, version)
			return true, nil
		case "help", "--help", "-help", "-h":
			fmt.Fprint(stdout, serverUsage)
			return true, nil
		}
	}
	for i, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		variable := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if !hasValue {
			value = "VALUE"
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				value = args[i+1]
			}
		}
		return true, fmt.Errorf("%w: qchat-server takes no flags such as %s: settings are environment variables, e.g. %s=%s qchat-server (see qchat-server --help)",
			errUsage, a, variable, value)
	}
	if len(args) > 1 && args[0] == "serve" {
		return true, fmt.Errorf("%w: serve takes no arguments (see qchat-server --help)", errUsage)
	}
	return false, nil
}
