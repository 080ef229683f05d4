// Page sizes (the `first` argument) of the library's list operations. Each
// operation is priced at its size by web/operations_test.go with the server's
// own cost functions, as Apollo sends it (with __typename in every selection):
// a page of messages or conversations twice this size would exceed the
// server's default complexity limit (2000).

export const PAGE_SIZE = {
  /** RoomMemberList: Room.membersConnection's maximum. */
  members: 100,
  /** RoomMembers: the recipients with their certificates and identity keys. */
  recipients: 75,
  /** MyRooms. */
  rooms: 50,
  /** RoomMessages and DirectMessages. */
  messages: 40,
  /** Conversations. */
  conversations: 30,
  /** RoomDocuments: a room's documents as its list shows them (a panel's worth). */
  documents: 20,
} as const;
