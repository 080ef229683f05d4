package chat

import (
	"context"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/models"
)

// Store is what the domain needs of the database, by job; *db.Store
// implements it on both dialects, and the domain's tests run on both.
type Store interface {
	UserStore
	RoomStore
	MessageStore
	DocumentStore
	// Blobs is the default BlobStore: document ciphertexts in the database.
	Blobs() *db.Blobs
}

// UserStore holds accounts, their keys, and who shares a conversation with
// whom.
type UserStore interface {
	CreateUser(ctx context.Context, u *models.User, k *models.PublicKey) error
	UserByID(ctx context.Context, id string) (*models.User, error)
	UserByUsername(ctx context.Context, username string) (*models.User, error)
	UsersByIDs(ctx context.Context, ids []string) ([]*models.User, error)
	UserRecipients(ctx context.Context, userIDs []string) ([]db.RoomRecipient, error)
	KeysByIDs(ctx context.Context, ids []string) ([]*models.PublicKey, error)
	KeysPage(ctx context.Context, userID string, after *db.Cursor, limit int) ([]*models.PublicKey, bool, error)
	RotateKey(ctx context.Context, userID string, k *models.PublicKey) error
	IdentityStore
	Contacts(ctx context.Context, userID string) ([]string, error)
	SharesConversation(ctx context.Context, a, b string) (bool, error)
	SharingConversation(ctx context.Context, userID string, others []string) (map[string]bool, error)
}

// IdentityStore holds version 2 identity keys and sealed key backups.
type IdentityStore interface {
	CreateUserWithIdentity(ctx context.Context, u *models.User, k *models.PublicKey, ik *models.IdentityKey) error
	CurrentIdentityKey(ctx context.Context, userID string) (*models.IdentityKey, error)
	CurrentIdentityKeys(ctx context.Context, userIDs []string) ([]*models.IdentityKey, error)
	SetIdentityKey(ctx context.Context, userID string, ik *models.IdentityKey, k *models.PublicKey) error
	PutKeyBackup(ctx context.Context, b *models.KeyBackup) error
	KeyBackup(ctx context.Context, userID string) (*models.KeyBackup, error)
	DeleteKeyBackup(ctx context.Context, userID string) (bool, error)
}

// RoomStore holds rooms and their members.
type RoomStore interface {
	CreateRoom(ctx context.Context, r *models.Room, members []*models.RoomMember) error
	RoomByID(ctx context.Context, id string) (*models.Room, error)
	RoomByCode(ctx context.Context, code string) (*models.Room, error)
	RoomsByIDs(ctx context.Context, ids []string) ([]*models.Room, error)
	RoomsPage(ctx context.Context, userID string, after *db.Cursor, limit int) ([]db.JoinedRoom, bool, error)
	RenameRoom(ctx context.Context, roomID, name string) error
	SetRoomCode(ctx context.Context, roomID, code string) error
	DeleteRoom(ctx context.Context, roomID string) error
	Membership(ctx context.Context, roomID, userID string) (*models.RoomMember, error)
	MembersOfRooms(ctx context.Context, ids []string) ([]*models.RoomMember, error)
	MembersPage(ctx context.Context, roomID string, after *db.Cursor, limit int) ([]*models.RoomMember, bool, error)
	MemberCounts(ctx context.Context, ids []string) (map[string]int, error)
	AddMemberIfRoom(ctx context.Context, m *models.RoomMember, limit int, full string) error
	RemoveMember(ctx context.Context, roomID, userID string) (deleted bool, err error)
	SetRole(ctx context.Context, roomID, userID string, role models.RoomRole) error
	Recipients(ctx context.Context, roomID string) ([]db.RoomRecipient, error)
}

// MessageStore holds messages, their recipient keys and read marks.
type MessageStore interface {
	InsertMessage(ctx context.Context, m *models.Message, keys []*models.RecipientKey) (stored *models.Message, existed bool, err error)
	MessageByID(ctx context.Context, id string) (*models.Message, error)
	MessagesByIDs(ctx context.Context, ids []string) ([]*models.Message, error)
	DeleteMessage(ctx context.Context, id string) (*models.Message, error)
	History(ctx context.Context, conversation, reader string, after *db.Cursor, limit int) ([]*models.Message, bool, error)
	RecipientKeys(ctx context.Context, pairs []db.MessageUser) ([]*models.RecipientKey, error)
	MarkRead(ctx context.Context, userID string, ids []string) ([]*models.RecipientKey, error)
	ConversationsPage(ctx context.Context, userID string, after *db.Cursor, limit int) ([]*models.Conversation, bool, error)
	UnreadCounts(ctx context.Context, userID string, convs []string) (map[string]int, error)
}

// DocumentStore holds documents' metadata and recipient keys.
type DocumentStore interface {
	InsertDocument(ctx context.Context, d *models.Document, keys []*models.DocumentKey) error
	DocumentByID(ctx context.Context, id string) (*models.Document, error)
	DocumentsByIDs(ctx context.Context, ids []string) ([]*models.Document, error)
	DocumentsPage(ctx context.Context, conversation string, after *db.Cursor, limit int) ([]*models.Document, bool, error)
	DocumentKeys(ctx context.Context, pairs []db.MessageUser) ([]*models.DocumentKey, error)
	DeleteDocument(ctx context.Context, id string) error
}

var _ Store = (*db.Store)(nil)
