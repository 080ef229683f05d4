package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/qchat/qchat/client"
)

// failure is an error as a person should read it: one short line with
// names, not ids or internal operations. The server's code, if any, is kept
// for --json, and the full chain stays reachable with errors.As.
type failure struct {
	msg   string
	code  string
	json  bool
	cause error
}

func (f *failure) Error() string { return f.msg }
func (f *failure) Unwrap() error { return f.cause }

// print writes the failure the way main shows it: "qchat: msg", or with
// --json one line {"error": msg, "code": code} (stderr either way, so that
// stdout stays a clean stream of results).
func (f *failure) print(w io.Writer) {
	if f.json {
		b, _ := json.Marshal(map[string]string{"error": f.msg, "code": f.code})
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	fmt.Fprintln(w, "qchat:", f.msg)
}

// fail says what could not be done, in words a person knows ("cannot send
// to Plans"), followed by why.
func fail(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return &failure{msg: fmt.Sprintf(format, args...) + ": " + reason(err), cause: err}
}

// explain turns the error that ended a command into its failure.
func (a *app) explain(err error) *failure {
	f := &failure{json: a.json, cause: err}
	var ce *client.Error
	if errors.As(err, &ce) {
		f.code = ce.Code
	}
	var known *failure
	switch {
	case errors.As(err, &known):
		f.msg = known.msg
		if known.code != "" {
			f.code = known.code
		}
	case errors.Is(err, errUsage):
		f.msg = strings.TrimPrefix(err.Error(), errUsage.Error()+": ")
		if f.code == "" {
			f.code = "USAGE"
		}
	default:
		f.msg = reason(err)
	}
	return f
}

// reason is why an operation failed, without the layers of operations it
// went through: the server's own message for a refusal, a plain sentence
// for the common cases.
func reason(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) {
		switch ce.Code {
		case client.CodeUnauthenticated:
			return "your session has ended: log in again"
		case client.CodeRateLimited:
			if s, ok := ce.Extensions["retryAfter"].(float64); ok {
				return fmt.Sprintf("the server asks you to slow down: try again in %.0f seconds", s)
			}
			return "the server asks you to slow down: try again later"
		case client.CodeInternalServerError:
			return "the server failed; try again, and tell its operator if it persists"
		case "":
			if ce.Status != 0 {
				return fmt.Sprintf("the server answered %s", strings.TrimPrefix(ce.Message, "HTTP "))
			}
		}
		return ce.Message
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "cannot reach the server: is qchat-server running there? (--server picks another)"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Sprintf("cannot find the server %s (check --server)", dnsErr.Name)
	}
	return err.Error()
}
