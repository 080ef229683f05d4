// Page sizes (the `first` argument) of the library's list operations. Each
// operation is priced at its size by web/operations_test.go with the server's
// own cost functions: a page of messages or conversations twice this size
// would exceed the server's default complexity limit (2000).

export const PAGE_SIZE = {
  /** RoomMembers: Room.membersConnection's maximum. */
  members: 100,
  /** MyRooms. */
  rooms: 100,
  /** RoomMessages and DirectMessages. */
  messages: 50,
  /** Conversations. */
  conversations: 50,
} as const;
