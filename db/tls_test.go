package db

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

func TestWithTLS(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "postgres://u:p@db.example.com:5432/qchat"
	cases := []struct {
		name, dsn, mode, ca string
		wantMode, wantCA    string
		wantErr             bool
	}{
		{"nothing set keeps the URL", base, "", "", "", "", false},
		{"a CA defaults to verify-full", base, "", ca, "verify-full", ca, false},
		{"an explicit mode wins", base, "verify-ca", ca, "verify-ca", ca, false},
		{"the URL's own sslmode is kept with a CA", base + "?sslmode=require", "", ca, "require", ca, false},
		{"mode alone", base, "require", "", "require", "", false},
		{"missing CA file", base, "", "/nonexistent/ca.pem", "", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := withTLS(tc.dsn, tc.mode, tc.ca)
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(got)
			if q := u.Query(); q.Get("sslmode") != tc.wantMode || q.Get("sslrootcert") != tc.wantCA {
				t.Fatalf("withTLS = %s", got)
			}
		})
	}
}
