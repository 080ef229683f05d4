package models

// Limits on rooms and lists. The resolvers enforce them and the GraphQL
// complexity pricing charges a plain list for its limit, so both read them
// from here.
const (
	// MaxRoomMembers is the largest a group room gets. Every message carries
	// one recipient key per member (about 1.7 KB in JSON with an X-Wing key),
	// so a room's cap decides the largest sendMessage request: 400 members
	// and the largest ciphertext come to about 0.75 MiB, under the 1 MiB body
	// and websocket frame limits with a quarter to spare (a test keeps the
	// two from drifting apart).
	MaxRoomMembers = 400
	// MaxMessageCiphertext is the largest message ciphertext, in bytes
	// (64 KiB of text less the 16-byte GCM tag); files go as documents.
	MaxMessageCiphertext = 64 << 10
	// MaxListedRooms bounds Query.myRooms (the most recently joined);
	// myRoomsConnection pages through the rest.
	MaxListedRooms = 100
	// MaxListedDocuments bounds Room.documents (the newest).
	MaxListedDocuments = 100
	// MaxListedKeys bounds User.keys (the newest).
	MaxListedKeys = 50
	// MaxPageSize is the largest `first` of a paged field.
	MaxPageSize = 100
)
