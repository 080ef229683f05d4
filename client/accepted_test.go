package client_test

import (
	"context"
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
