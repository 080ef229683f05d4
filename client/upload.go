package client

// Upload stands for a file variable (the schema's Upload scalar) in a
// generated input. It always marshals as null, as the GraphQL multipart
// request spec requires: the bytes travel in a separate form part that the
// "map" field points at this variable.
type Upload struct{}

// MarshalJSON writes the null placeholder.
func (Upload) MarshalJSON() ([]byte, error) { return []byte("null"), nil }
