package wsclient

import "fmt"

// ICEServer is one entry of an iceServers list, as the browser's
// RTCIceServer: urls a string or an array of strings.
type ICEServer struct {
	URLs       []string
	Username   string
	Credential string
}

// ICEServers returns the list under key "iceServers" of f (a welcome, a
// matched or a welcome's chat); ok is false if f has none.
func (f Frame) ICEServers() (servers []ICEServer, ok bool, err error) {
	raw, ok := f["iceServers"]
	if !ok {
		return nil, false, nil
	}
	list, isList := raw.([]any)
	if !isList {
		return nil, true, fmt.Errorf("%w: iceServers is %T, want an array", ErrBadFrame, raw)
	}
	servers = make([]ICEServer, 0, len(list))
	for _, v := range list {
		m, isObj := v.(map[string]any)
		if !isObj {
			return nil, true, fmt.Errorf("%w: iceServers entry %v is not an object", ErrBadFrame, v)
		}
		var s ICEServer
		switch u := m["urls"].(type) {
		case string:
			s.URLs = []string{u}
		case []any:
			for _, x := range u {
				str, isStr := x.(string)
				if !isStr {
					return nil, true, fmt.Errorf("%w: iceServers urls holds %v", ErrBadFrame, x)
				}
				s.URLs = append(s.URLs, str)
			}
		default:
			return nil, true, fmt.Errorf("%w: iceServers entry %v: urls is not a string or array", ErrBadFrame, m)
		}
		s.Username, _ = m["username"].(string)
		s.Credential, _ = m["credential"].(string)
		servers = append(servers, s)
	}
	return servers, true, nil
}

// CallICEServers is the list a call uses (protocol 1.1): matched.iceServers,
// or, from a 1.0 server whose matched has none, welcome.iceServers.
func CallICEServers(matched, welcome Frame) ([]ICEServer, error) {
	if s, ok, err := matched.ICEServers(); ok || err != nil {
		return s, err
	}
	s, _, err := welcome.ICEServers()
	return s, err
}
