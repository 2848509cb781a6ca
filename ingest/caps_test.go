package ingest

import (
	"testing"

	"github.com/rs/zerolog"

	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
)

// TestConnectCaps checks both sides of the Enhanced RTMP connect exchange:
// the _result states the FourCCs the outputs carry and capsEx, and the
// client's fourCcList, FourCC info maps (as object and as ECMA array) and
// capsEx are read and logged once, on the connect line.
func TestConnectCaps(t *testing.T) {
	var logs logBuffer
	addr := startServer(t, &Server{Handler: newRecHandler(), Logger: zerolog.New(&logs)})
	c := dialClient(t, addr)
	must(t, c.command(0, "connect", 1, rtmp.Object{
		{Key: "app", Value: "live"},
		{Key: "fourCcList", Value: []any{"hvc1", "av01", "Opus"}},
		{Key: "videoFourCcInfoMap", Value: rtmp.ECMAArray{{Key: "hvc1", Value: 3.0}, {Key: "av01", Value: 1.0}}},
		{Key: "audioFourCcInfoMap", Value: rtmp.Object{{Key: "Opus", Value: 2.0}}},
		{Key: "capsEx", Value: 13.0},
	}))
	res := c.expectCommand("_result")
	props, _ := res[2].(rtmp.Object)
	if props == nil {
		t.Fatalf("_result without a properties object: %v", res)
	}
	list, _ := props.Get("fourCcList")
	if got, want := list, []any{"avc1", "hvc1", "av01", "vp09", "mp4a", "Opus", "fLaC", "ac-3", "ec-3"}; !equalAny(got, want) {
		t.Errorf("fourCcList %v, want %v", got, want)
	}
	vmap, _ := props.Get("videoFourCcInfoMap")
	if m, _ := vmap.(rtmp.Object); len(m) != 4 || m[1].Key != "hvc1" || m[1].Value != float64(fourCCCanForward) {
		t.Errorf("videoFourCcInfoMap %v", vmap)
	}
	amap, _ := props.Get("audioFourCcInfoMap")
	if m, _ := amap.(rtmp.Object); len(m) != 5 || m[1].Key != "Opus" || m[2].Key != "fLaC" || m[3].Key != "ac-3" || m[4].Key != "ec-3" {
		t.Errorf("audioFourCcInfoMap %v", amap)
	}
	if caps, _ := props.Get("capsEx"); caps != float64(capsExReconnect|capsExMultitrack|capsExModEx|capsExTimestampNanoOffset) {
		t.Errorf("capsEx %v", caps)
	}
	if code := rtmp.StatusCode(res); code != "NetConnection.Connect.Success" {
		t.Fatalf("code %q", code)
	}
	must(t, c.command(0, "createStream", 2, nil))
	c.expectCommand("_result")
	for _, want := range []string{
		`"fourcc_list":["hvc1","av01","Opus"]`, `"video_fourcc_info_map":"av01:1,hvc1:3"`,
		`"audio_fourcc_info_map":"Opus:2"`, `"caps_ex":13`,
	} {
		if n := logs.count(want); n != 1 {
			t.Errorf("%d log lines with %s, want 1:\n%s", n, want, logs.String())
		}
	}
}

func equalAny(a any, b []any) bool {
	s, ok := a.([]any)
	if !ok || len(s) != len(b) {
		return false
	}
	for i := range s {
		if s[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMetadataFourCC(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{7, ""}, {10, ""}, {0x68766331, "hvc1"}, {1332770163, "Opus"}, {1635135537, "av01"},
		{0x01020304, ""}, {0x68766331 + 0.5, ""}, {-1, ""}, {1 << 40, ""},
	} {
		if got := metadataFourCC(tc.in); got != tc.want {
			t.Errorf("metadataFourCC(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzClientCaps decodes AMF0 values and reads capabilities from every object
// or ECMA array among them: no panic, and the kept entries stay bounded.
func FuzzClientCaps(f *testing.F) {
	f.Add(rtmp.AppendAMF0(nil, rtmp.Object{
		{Key: "fourCcList", Value: []any{"hvc1", "av01", "Opus"}},
		{Key: "videoFourCcInfoMap", Value: rtmp.ECMAArray{{Key: "hvc1", Value: 3.0}}},
		{Key: "audioFourCcInfoMap", Value: rtmp.Object{{Key: "*", Value: 4.0}}},
		{Key: "capsEx", Value: 15.0},
	}))
	f.Add(rtmp.AppendAMF0(nil, rtmp.Object{{Key: "capsEx", Value: -1.0}, {Key: "fourCcList", Value: "hvc1"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		vals, err := rtmp.DecodeAMF0(b)
		if err != nil {
			return
		}
		for _, v := range vals {
			var obj rtmp.Object
			switch o := v.(type) {
			case rtmp.Object:
				obj = o
			case rtmp.ECMAArray:
				obj = rtmp.Object(o)
			default:
				continue
			}
			c := readClientCaps(obj)
			if len(c.fourCCList) > maxCapsEntries || len(c.video) > maxCapsEntries || len(c.audio) > maxCapsEntries {
				t.Fatalf("unbounded caps: %d, %d, %d", len(c.fourCCList), len(c.video), len(c.audio))
			}
			_ = mapString(c.video)
		}
	})
}
