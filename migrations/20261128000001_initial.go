package migrations

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

func registerInitial(ms *migrate.Migrations) { ms.MustRegister(tx(initialUp), tx(initialDown)) }

// Times are BIGINT microseconds since the epoch (see models.Time).

type user001 struct {
	bun.BaseModel `bun:"table:users"`
	ID            string `bun:"id,pk,type:varchar(36)"`
	Username      string `bun:"username,notnull,type:varchar(32)"`
	UsernameKey   string `bun:"username_key,notnull,unique,type:varchar(32)"`
	PasswordHash  []byte `bun:"password_hash,notnull"`
	CurrentKeyID  string `bun:"current_key_id,notnull,type:varchar(36)"`
	CreatedAt     int64  `bun:"created_at,notnull"`
}

type userKey001 struct {
	bun.BaseModel `bun:"table:user_keys"`
	ID            string `bun:"id,pk,type:varchar(36)"`
	UserID        string `bun:"user_id,notnull,type:varchar(36)"`
	Algorithm     string `bun:"algorithm,notnull,type:varchar(16)"`
	PublicKey     []byte `bun:"public_key,notnull"`
	Fingerprint   string `bun:"fingerprint,notnull,type:varchar(64)"`
	Current       bool   `bun:"current,notnull"`
	CreatedAt     int64  `bun:"created_at,notnull"`
}

type session001 struct {
	bun.BaseModel `bun:"table:sessions"`
	TokenHash     []byte `bun:"token_hash,pk"`
	UserID        string `bun:"user_id,notnull,type:varchar(36)"`
	CreatedAt     int64  `bun:"created_at,notnull"`
	ExpiresAt     int64  `bun:"expires_at,notnull"`
}

type room001 struct {
	bun.BaseModel `bun:"table:rooms"`
	ID            string `bun:"id,pk,type:varchar(36)"`
	Name          string `bun:"name,notnull,type:varchar(100)"`
	IsGroup       bool   `bun:"is_group,notnull"`
	Code          string `bun:"code,notnull,unique,type:varchar(16)"`
	OwnerID       string `bun:"owner_id,nullzero,type:varchar(36)"`
	CreatedAt     int64  `bun:"created_at,notnull"`
}

type roomMember001 struct {
	bun.BaseModel `bun:"table:room_members"`
	RoomID        string `bun:"room_id,pk,type:varchar(36)"`
	UserID        string `bun:"user_id,pk,type:varchar(36)"`
	Role          string `bun:"role,notnull,type:varchar(8)"`
	JoinedAt      int64  `bun:"joined_at,notnull"`
}

type message001 struct {
	bun.BaseModel `bun:"table:messages"`
	ID            string  `bun:"id,pk,type:varchar(36)"`
	Conversation  string  `bun:"conversation,notnull,type:varchar(80)"`
	RoomID        *string `bun:"room_id,type:varchar(36)"`
	SenderID      string  `bun:"sender_id,notnull,type:varchar(36)"`
	RecipientID   *string `bun:"recipient_id,type:varchar(36)"`
	Ciphertext    []byte  `bun:"ciphertext"`
	Nonce         []byte  `bun:"nonce"`
	AttachmentID  *string `bun:"attachment_id,type:varchar(36)"`
	ContentHash   []byte  `bun:"content_hash,notnull"`
	CreatedAt     int64   `bun:"created_at,notnull"`
	DeletedAt     *int64  `bun:"deleted_at"`
}

type messageKey001 struct {
	bun.BaseModel `bun:"table:message_keys"`
	MessageID     string `bun:"message_id,pk,type:varchar(36)"`
	UserID        string `bun:"user_id,pk,type:varchar(36)"`
	KeyID         string `bun:"key_id,notnull,type:varchar(36)"`
	KEMCiphertext []byte `bun:"kem_ciphertext,notnull"`
	WrappedKey    []byte `bun:"wrapped_key,notnull"`
	ReadAt        *int64 `bun:"read_at"`
}

func initialUp(ctx context.Context, db bun.IDB) error {
	if err := createTables(ctx, db, []table{
		{(*user001)(nil), nil},
		{(*userKey001)(nil), []string{`("user_id") REFERENCES "users" ("id") ON DELETE CASCADE`}},
		{(*session001)(nil), []string{`("user_id") REFERENCES "users" ("id") ON DELETE CASCADE`}},
		{(*room001)(nil), []string{`("owner_id") REFERENCES "users" ("id") ON DELETE SET NULL`}},
		{(*roomMember001)(nil), []string{
			`("room_id") REFERENCES "rooms" ("id") ON DELETE CASCADE`,
			`("user_id") REFERENCES "users" ("id") ON DELETE CASCADE`,
		}},
		{(*message001)(nil), []string{
			`("room_id") REFERENCES "rooms" ("id") ON DELETE CASCADE`,
			`("sender_id") REFERENCES "users" ("id") ON DELETE CASCADE`,
			`("recipient_id") REFERENCES "users" ("id") ON DELETE CASCADE`,
		}},
		{(*messageKey001)(nil), []string{
			`("message_id") REFERENCES "messages" ("id") ON DELETE CASCADE`,
			`("user_id") REFERENCES "users" ("id") ON DELETE CASCADE`,
		}},
	}); err != nil {
		return err
	}
	return createIndexes(ctx, db, []index{
		{table: "user_keys", name: "user_keys_user_idx", columns: []string{"user_id", "created_at DESC"}},
		{table: "sessions", name: "sessions_user_idx", columns: []string{"user_id"}},
		{table: "sessions", name: "sessions_expires_idx", columns: []string{"expires_at"}},
		{table: "room_members", name: "room_members_user_idx", columns: []string{"user_id"}},
		// History pages: one range scan of this index per page, whatever the table size.
		{table: "messages", name: "messages_conversation_idx", columns: []string{"conversation", "created_at DESC", "id DESC"}},
		{table: "messages", name: "messages_room_idx", columns: []string{"room_id"}},
		{table: "messages", name: "messages_recipient_idx", columns: []string{"recipient_id", "sender_id"}},
		{table: "messages", name: "messages_sender_idx", columns: []string{"sender_id", "recipient_id"}},
		{table: "message_keys", name: "message_keys_user_idx", columns: []string{"user_id"}},
	})
}

func initialDown(ctx context.Context, db bun.IDB) error {
	for _, t := range []string{"message_keys", "messages", "room_members", "rooms", "sessions", "user_keys", "users"} {
		if _, err := db.NewDropTable().Table(t).IfExists().Exec(ctx); err != nil {
			return fmt.Errorf("drop table %s: %w", t, err)
		}
	}
	return nil
}
