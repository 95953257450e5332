package protocol

// ICEServer is one entry of welcome.iceServers, shaped like the browser's
// RTCIceServer dictionary.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}
