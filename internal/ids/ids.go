// Package ids holds the identifiers that several layers pass to each other:
// a session's id and a node's id. They are distinct types so that the
// compiler rejects one given where the other (or a room id, a token, an
// interest) is expected; they become plain strings only at the edges (the
// wire protocol, Redis keys and script arguments, logs, metric labels).
//
// Why a package of their own: a session id is used by cluster (routing,
// resume tokens), by match (imported by signaling, importing cluster) and by
// signaling, and a node id by cluster, match and signaling, which does not
// import cluster. The owner of each concept would have to be imported by a
// package that it imports, or by one that does not import it today; a leaf
// package keeps the import graph as it is. Room ids are created and used
// only by match and the layers above it, so match.RoomID lives in match.
package ids

// SessionID names a session on every node of a deployment, for its whole
// life (a resume keeps it).
type SessionID string

// NodeID names a node of a deployment (its Redis channel and heartbeat).
type NodeID string
