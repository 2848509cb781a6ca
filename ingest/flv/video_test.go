package flv_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
)

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestParseVideo(t *testing.T) {
	avcC := readTestdata(t, "base320.video")[5:]
	nalus := []byte{0, 0, 0, 2, 0x65, 0x88}
	tests := []struct {
		name string
		body []byte
		want flv.Packet // Data compared by content; Track only checked for presence
		err  error      // errors.Is target
		msg  string     // substring of the error message
	}{
		{name: "keyframe", body: cat([]byte{0x17, 1, 0, 0, 0x42}, nalus),
			want: flv.Packet{Type: flv.PacketFrame, CTS: 0x42, Key: true, Data: nalus}},
		{name: "inter frame", body: cat([]byte{0x27, 1, 0, 0x01, 0x00}, nalus),
			want: flv.Packet{Type: flv.PacketFrame, CTS: 256, Data: nalus}},
		{name: "negative cts", body: cat([]byte{0x27, 1, 0xff, 0xff, 0xdf}, nalus),
			want: flv.Packet{Type: flv.PacketFrame, CTS: -33, Data: nalus}},
		{name: "most negative cts", body: []byte{0x27, 1, 0x80, 0, 0},
			want: flv.Packet{Type: flv.PacketFrame, CTS: -1 << 23, Data: []byte{}}},
		{name: "largest cts", body: []byte{0x27, 1, 0x7f, 0xff, 0xff},
			want: flv.Packet{Type: flv.PacketFrame, CTS: 1<<23 - 1, Data: []byte{}}},
		{name: "disposable inter frame", body: cat([]byte{0x37, 1, 0, 0, 0}, nalus),
			want: flv.Packet{Type: flv.PacketFrame, Data: nalus}},
		{name: "sequence header", body: cat([]byte{0x17, 0, 0, 0, 0}, avcC),
			want: flv.Packet{Type: flv.PacketSequenceHeader}},
		{name: "end of sequence", body: []byte{0x17, 2, 0, 0, 0},
			want: flv.Packet{Type: flv.PacketEndOfSequence}},
		{name: "end of sequence without cts", body: []byte{0x17, 2},
			want: flv.Packet{Type: flv.PacketEndOfSequence}},
		{name: "command frame", body: []byte{0x57, 0},
			want: flv.Packet{Type: flv.PacketCommand}},
		{name: "command frame of another codec", body: []byte{0x52, 1},
			want: flv.Packet{Type: flv.PacketCommand}},

		{name: "sorenson h263", body: []byte{0x22, 1, 2, 3}, err: flv.ErrUnsupportedCodec, msg: "flv: video codec id 2: unsupported codec"},
		{name: "vp6", body: []byte{0x14, 0}, err: flv.ErrUnsupportedCodec, msg: "video codec id 4"},
		{name: "hevc codec id 12", body: []byte{0x1c, 0, 0, 0, 0, 1}, err: flv.ErrUnsupportedCodec, msg: "flv: video codec id 12 (HEVC, non-standard): unsupported codec"},
		{name: "codec id only", body: []byte{0x1d}, err: flv.ErrUnsupportedCodec, msg: "video codec id 13"},

		{name: "empty", body: nil, err: flv.ErrMalformed, msg: "empty"},
		{name: "header only", body: []byte{0x17}, err: flv.ErrMalformed, msg: "truncated"},
		{name: "nalu without cts", body: []byte{0x17, 1, 0}, err: flv.ErrMalformed, msg: "truncated"},
		{name: "sequence header without cts", body: []byte{0x17, 0}, err: flv.ErrMalformed, msg: "truncated"},
		{name: "reserved avc packet type", body: []byte{0x17, 3, 0, 0, 0}, err: flv.ErrMalformed, msg: "AVC packet type 3"},
		{name: "reserved frame type 0", body: []byte{0x07, 1, 0, 0, 0}, err: flv.ErrMalformed, msg: "frame type 0"},
		{name: "reserved frame type 6", body: []byte{0x67, 1, 0, 0, 0}, err: flv.ErrMalformed, msg: "frame type 6"},
		{name: "empty avcC", body: []byte{0x17, 0, 0, 0, 0}, err: flv.ErrMalformed, msg: "avcC"},

		// Enhanced RTMP: 0x80 | frame type << 4 | packet type, then a FourCC.
		{name: "ex avc1 sequence start", body: cat([]byte{0x90}, []byte("avc1"), avcC),
			want: flv.Packet{Type: flv.PacketSequenceHeader}},
		{name: "ex avc1 coded frames", body: cat([]byte{0x91}, []byte("avc1"), []byte{0xff, 0xff, 0xfe}, nalus),
			want: flv.Packet{Type: flv.PacketFrame, Key: true, CTS: -2, Data: nalus}},
		{name: "ex avc1 coded frames x", body: cat([]byte{0xa3}, []byte("avc1"), nalus),
			want: flv.Packet{Type: flv.PacketFrame, Data: nalus}},
		{name: "ex avc1 sequence end", body: cat([]byte{0x92}, []byte("avc1")),
			want: flv.Packet{Type: flv.PacketEndOfSequence}},
		{name: "ex metadata", body: cat([]byte{0x94}, []byte("avc1"), []byte{2, 0, 9}),
			want: flv.Packet{Type: flv.PacketCommand}},
		{name: "ex command frame", body: cat([]byte{0xd1}, []byte("hvc1"), []byte{0}),
			want: flv.Packet{Type: flv.PacketCommand}},
		{name: "ex modex then coded frames x", body: cat([]byte{0xa7, 3, 0, 0, 0, 9, 0x03}, []byte("avc1"), nalus),
			want: flv.Packet{Type: flv.PacketFrame, Data: nalus}},
		{name: "ex modex with 16-bit size", body: cat([]byte{0xa7, 255, 0x01, 0x00}, make([]byte, 257), []byte{0x03}, []byte("avc1"), nalus),
			want: flv.Packet{Type: flv.PacketFrame, Data: nalus}},

		{name: "ex hvc1", body: cat([]byte{0x90}, []byte("hvc1"), []byte{1, 2}), err: flv.ErrUnsupportedCodec, msg: `flv: video FourCC "hvc1": unsupported codec`},
		{name: "ex av01", body: cat([]byte{0x91}, []byte("av01")), err: flv.ErrUnsupportedCodec, msg: `"av01"`},
		{name: "ex vp09", body: cat([]byte{0x93}, []byte("vp09")), err: flv.ErrUnsupportedCodec, msg: `"vp09"`},
		{name: "ex unknown fourcc", body: cat([]byte{0x91}, []byte("ab\x00\xff")), err: flv.ErrUnsupportedCodec, msg: `"ab\x00\xff"`},
		{name: "ex multitrack", body: []byte{0x96, 0x01, 'a', 'v', 'c', '1'}, err: flv.ErrUnsupportedCodec, msg: "multitrack"},

		{name: "ex fourcc truncated", body: []byte{0x91, 'a', 'v', 'c'}, err: flv.ErrMalformed, msg: "truncated"},
		{name: "ex coded frames cts truncated", body: cat([]byte{0x91}, []byte("avc1"), []byte{0, 0}), err: flv.ErrMalformed, msg: "truncated"},
		{name: "ex modex truncated", body: []byte{0x97, 4, 0, 0}, err: flv.ErrMalformed, msg: "ModEx"},
		{name: "ex modex 16-bit size truncated", body: []byte{0x97, 255, 1}, err: flv.ErrMalformed, msg: "ModEx"},
		{name: "ex mpeg2ts sequence start for avc1", body: cat([]byte{0x95}, []byte("avc1")), err: flv.ErrMalformed, msg: "packet type 5"},
		{name: "ex reserved frame type", body: cat([]byte{0xe1}, []byte("avc1"), []byte{0, 0, 0}), err: flv.ErrMalformed, msg: "frame type 6"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := flv.ParseVideo(tc.body)
			checkPacket(t, got, err, tc.want, tc.err, tc.msg)
			if err == nil && got.Data != nil && len(got.Data) > 0 && &got.Data[len(got.Data)-1] != &tc.body[len(tc.body)-1] {
				t.Error("Data does not alias the end of the body")
			}
		})
	}
}

// checkPacket compares a parse result with what a table expects: an error that
// wraps exactly one of the two sentinels and carries msg, or the packet.
func checkPacket(t *testing.T, got flv.Packet, err error, want flv.Packet, wantErr error, msg string) {
	t.Helper()
	if wantErr != nil {
		if !errors.Is(err, wantErr) {
			t.Fatalf("error %v, want one wrapping %v", err, wantErr)
		}
		if errors.Is(err, flv.ErrMalformed) && errors.Is(err, flv.ErrUnsupportedCodec) {
			t.Errorf("error %v wraps both sentinels", err)
		}
		if !strings.Contains(err.Error(), msg) {
			t.Errorf("error %q does not contain %q", err, msg)
		}
		if got.Type != 0 || got.Track != nil || got.Data != nil {
			t.Errorf("packet %+v returned with an error", got)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != want.Type || got.CTS != want.CTS || got.Key != want.Key || !bytes.Equal(got.Data, want.Data) {
		t.Errorf("got %v cts %d key %v data % x\nwant %v cts %d key %v data % x",
			got.Type, got.CTS, got.Key, got.Data, want.Type, want.CTS, want.Key, want.Data)
	}
	if (got.Type == flv.PacketSequenceHeader) != (got.Track != nil) {
		t.Errorf("type %v with track %v", got.Type, got.Track)
	}
	if got.Type == flv.PacketFrame && got.Data == nil {
		t.Error("frame with nil Data")
	}
}
