// Package docs holds no code: its tests keep the repository's documentation
// self-contained, so that a clone is all a reader or a client author needs.
package docs
