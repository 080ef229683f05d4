package client_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/qchat/qchat/client"
	"github.com/qchat/qchat/pqcrypto"
)

// TestAcceptedTypesAreTheServers: clients check types against
// AcceptedTypes before sealing, so it must be exactly what the server
// stores: each is accepted, and a type outside it is refused.
func TestAcceptedTypesAreTheServers(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	alice := register(t, srv, "alice", pqcrypto.MLKEM768)
	bob := register(t, srv, "bob", pqcrypto.MLKEM768)
	conv := client.WithUser(bob.Self.Id)
	for _, typ := range client.AcceptedTypes {
		if !client.Accepted(typ.MimeType) {
			t.Errorf("Accepted(%q) = false", typ.MimeType)
		}
		if _, err := alice.UploadDocument(ctx, conv, "file", typ.MimeType, []byte("x")); err != nil {
			t.Errorf("%s (%s): %v", typ.Name, typ.MimeType, err)
		}
	}
	for _, typ := range []string{"text/csv", "application/octet-stream", "text/html"} {
		if client.Accepted(typ) {
			t.Errorf("Accepted(%q) = true", typ)
		}
		if _, err := alice.UploadDocument(ctx, conv, "file", typ, []byte("x")); code(err) != client.CodeBadUserInput {
			t.Errorf("%s: %v, want BAD_USER_INPUT", typ, err)
		}
	}
	if client.FileSize(80) != 64 || client.MaxFileSize != client.MaxDocumentSize-16 {
		t.Errorf("FileSize(80) = %d, MaxFileSize = %d", client.FileSize(80), client.MaxFileSize)
	}
}

// countingTransport counts the requests made through it.
type countingTransport struct{ n atomic.Int32 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// TestWithSessionSavesAskingWhoIAm: a client told its user id sends a
// message in two requests (recipients, send), not three.
func TestWithSessionSavesAskingWhoIAm(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	alice := register(t, srv, "alice", pqcrypto.MLKEM768)
	bob := register(t, srv, "bob", pqcrypto.MLKEM768)
	for _, tc := range []struct {
		name string
		opt  client.Option
		want int32
	}{
		{"token only", client.WithToken(alice.Token()), 3},
		{"token and user id", client.WithSession(alice.Token(), alice.Self.Id), 2},
	} {
		ct := &countingTransport{}
		c, err := client.New(srv.URL, tc.opt, client.WithHTTPClient(&http.Client{Transport: ct}), client.WithIdentity(alice.Identity()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.SendText(ctx, client.WithUser(bob.Self.Id), "hi"); err != nil {
			t.Fatal(err)
		}
		if n := ct.n.Load(); n != tc.want {
			t.Errorf("%s: %d requests, want %d", tc.name, n, tc.want)
		}
	}
}
