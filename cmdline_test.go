package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// TestCommandLine: version and help need no configuration, and a flag is
// refused with the variable to use instead, never silently ignored.
func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		out   string
		err   string
		usage bool
	}{
		{[]string{"version"}, version + "\n", "", false},
		{[]string{"--version"}, version + "\n", "", false},
		{[]string{"--help"}, "Usage:", "", false},
		{[]string{"-h"}, "Usage:", "", false},
		{[]string{"help"}, "Usage:", "", false},
		{[]string{"serve", "--port", "19381"}, "", "PORT=19381 qchat-server", true},
		{[]string{"--port=19381"}, "", "PORT=19381 qchat-server", true},
		{[]string{"serve", "--data-dir"}, "", "DATA_DIR=VALUE", true},
		{[]string{"serve", "now"}, "", "serve takes no arguments", true},
	} {
		var out bytes.Buffer
		// A configuration that cannot load shows that these come first.
		err := run(context.Background(), tc.args, env(map[string]string{"PORT": "eighty"}), &out, &out)
		if tc.err == "" {
			if err != nil || !strings.Contains(out.String(), tc.out) {
				t.Errorf("qchat-server %s: %q, %v", strings.Join(tc.args, " "), out.String(), err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) || errors.Is(err, errUsage) != tc.usage {
			t.Errorf("qchat-server %s: %v, want %q", strings.Join(tc.args, " "), err, tc.err)
		}
	}
}
