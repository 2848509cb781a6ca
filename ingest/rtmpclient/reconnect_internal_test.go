package rtmpclient

import "testing"

// TestReconnectURL resolves the example tcUrl values of E-RTMP v2's
// Reconnect Request section against the connection's tcUrl.
func TestReconnectURL(t *testing.T) {
	for _, tc := range []struct{ to, want string }{
		{"", "rtmp://origin.example:1935/live/cam?key=1"},
		{"rtmp://foo.mydomain.com:1935/realtimeapp", "rtmp://foo.mydomain.com:1935/realtimeapp/cam?key=1"},
		{"//192.0.2.0/realtimeapp", "rtmp://192.0.2.0/realtimeapp/cam?key=1"},
		{"/realtimeapp", "rtmp://origin.example:1935/realtimeapp/cam?key=1"},
	} {
		p := &Publisher{tcURL: "rtmp://origin.example:1935/live", name: "cam?key=1", reconnect: make(chan struct{}), reconnectTo: tc.to}
		if _, err := p.ReconnectURL(); err == nil {
			t.Fatal("ReconnectURL before a request: no error")
		}
		close(p.reconnect)
		got, err := p.ReconnectURL()
		if err != nil || got != tc.want {
			t.Errorf("tcUrl %q: %q, %v; want %q", tc.to, got, err, tc.want)
		}
	}
	p := &Publisher{tcURL: "rtmp://h/live", name: "s", reconnect: make(chan struct{}), reconnectTo: "http://h/x"}
	close(p.reconnect)
	if _, err := p.ReconnectURL(); err == nil {
		t.Error("an http tcUrl was accepted")
	}
}
