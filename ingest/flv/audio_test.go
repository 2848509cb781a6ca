package flv_test

import (
	"testing"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
)

func TestParseAudio(t *testing.T) {
	asc := []byte{0x12, 0x10} // AAC-LC, 44100 Hz, stereo
	raw := []byte{0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c}
	tests := []struct {
		name string
		body []byte
		want flv.Packet
		err  error
		msg  string
	}{
		{name: "raw", body: cat([]byte{0xaf, 1}, raw), want: flv.Packet{Type: flv.PacketFrame, Key: true, Data: raw}},
		{name: "raw with odd flag bits", body: cat([]byte{0xa0, 1}, raw), want: flv.Packet{Type: flv.PacketFrame, Key: true, Data: raw}},
		{name: "empty raw", body: []byte{0xaf, 1}, want: flv.Packet{Type: flv.PacketFrame, Key: true, Data: []byte{}}},
		{name: "sequence header", body: cat([]byte{0xaf, 0}, asc), want: flv.Packet{Type: flv.PacketSequenceHeader}},

		{name: "ex mp4a sequence start", body: cat([]byte{0x90}, []byte("mp4a"), asc), want: flv.Packet{Type: flv.PacketSequenceHeader}},
		{name: "ex mp4a coded frames", body: cat([]byte{0x91}, []byte("mp4a"), raw), want: flv.Packet{Type: flv.PacketFrame, Key: true, Data: raw}},
		{name: "ex mp4a sequence end", body: cat([]byte{0x92}, []byte("mp4a")), want: flv.Packet{Type: flv.PacketEndOfSequence}},
		{name: "ex multichannel config", body: cat([]byte{0x94}, []byte("mp4a"), []byte{0, 2}), want: flv.Packet{Type: flv.PacketCommand}},
		{name: "ex modex then coded frames", body: cat([]byte{0x97, 0, 0, 0x01}, []byte("mp4a"), raw), want: flv.Packet{Type: flv.PacketFrame, Key: true, Data: raw}},

		{name: "pcm", body: []byte{0x0f, 1, 2}, err: flv.ErrUnsupportedCodec, msg: "flv: audio sound format 0: unsupported codec"},
		{name: "mp3", body: []byte{0x2f, 0xff, 0xfb}, err: flv.ErrUnsupportedCodec, msg: "audio sound format 2:"},
		{name: "nellymoser", body: []byte{0x6e}, err: flv.ErrUnsupportedCodec, msg: "audio sound format 6:"},
		{name: "g711 alaw", body: []byte{0x72, 0}, err: flv.ErrUnsupportedCodec, msg: "audio sound format 7:"},
		{name: "g711 mulaw", body: []byte{0x82, 0}, err: flv.ErrUnsupportedCodec, msg: "audio sound format 8:"},
		{name: "speex", body: []byte{0xb2, 1, 2, 3}, err: flv.ErrUnsupportedCodec, msg: "audio sound format 11:"},
		{name: "mp3 8 kHz", body: []byte{0xe2}, err: flv.ErrUnsupportedCodec, msg: "audio sound format 14:"},
		{name: "ex opus", body: cat([]byte{0x90}, []byte("Opus"), []byte{1}), err: flv.ErrUnsupportedCodec, msg: `flv: audio FourCC "Opus": unsupported codec`},
		{name: "ex flac", body: cat([]byte{0x91}, []byte("fLaC")), err: flv.ErrUnsupportedCodec, msg: `"fLaC"`},
		{name: "ex ac-3", body: cat([]byte{0x91}, []byte("ac-3")), err: flv.ErrUnsupportedCodec, msg: `"ac-3"`},
		{name: "ex ec-3", body: cat([]byte{0x91}, []byte("ec-3")), err: flv.ErrUnsupportedCodec, msg: `"ec-3"`},
		{name: "ex mp3", body: cat([]byte{0x91}, []byte(".mp3")), err: flv.ErrUnsupportedCodec, msg: `".mp3"`},
		{name: "ex unknown", body: cat([]byte{0x91}, []byte("zz\n9")), err: flv.ErrUnsupportedCodec, msg: `"zz\n9"`},
		{name: "ex multitrack", body: []byte{0x95, 0x01, 'm', 'p', '4', 'a'}, err: flv.ErrUnsupportedCodec, msg: "multitrack"},

		{name: "empty", body: []byte{}, err: flv.ErrMalformed, msg: "empty"},
		{name: "aac header only", body: []byte{0xaf}, err: flv.ErrMalformed, msg: "truncated"},
		{name: "reserved aac packet type", body: []byte{0xaf, 2, 0}, err: flv.ErrMalformed, msg: "AAC packet type 2"},
		{name: "empty asc", body: []byte{0xaf, 0}, err: flv.ErrMalformed, msg: "AudioSpecificConfig"},
		{name: "ex fourcc truncated", body: []byte{0x91, 'm', 'p'}, err: flv.ErrMalformed, msg: "truncated"},
		{name: "ex reserved packet type", body: cat([]byte{0x93}, []byte("mp4a")), err: flv.ErrMalformed, msg: "packet type 3"},
		{name: "ex modex truncated", body: []byte{0x97, 9}, err: flv.ErrMalformed, msg: "ModEx"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := flv.ParseAudio(tc.body)
			checkPacket(t, got, err, tc.want, tc.err, tc.msg)
		})
	}
}

func TestAudioSpecificConfig(t *testing.T) {
	tests := []struct {
		name     string
		asc      []byte
		aot      int
		rate     int
		channels int
		err      error
		msg      string
	}{
		{name: "lc 44100 stereo", asc: []byte{0x12, 0x10}, aot: 2, rate: 44100, channels: 2},
		{name: "lc 48000 mono", asc: []byte{0x11, 0x88}, aot: 2, rate: 48000, channels: 1},
		{name: "lc 8000 7.1", asc: []byte{0x15, 0xb8}, aot: 2, rate: 8000, channels: 8},
		{name: "main 96000 mono", asc: []byte{0x08, 0x08}, aot: 1, rate: 96000, channels: 1},
		{name: "ltp 22050 stereo", asc: []byte{0x23, 0x90}, aot: 4, rate: 22050, channels: 2},
		// Index 15: an explicit 24-bit frequency, 0x005622 = 22050.
		{name: "explicit frequency", asc: []byte{0x17, 0x80, 0x2b, 0x11, 0x10}, aot: 2, rate: 22050, channels: 2},
		// HE-AAC, explicit: aot 5, core 24000 Hz, stereo, extension 48000 Hz, core aot 2.
		{name: "he-aac", asc: []byte{0x2b, 0x11, 0x88, 0x00}, aot: 5, rate: 24000, channels: 2},
		// HE-AACv2: aot 29, core 24000 Hz, mono, extension 48000 Hz, core aot 2.
		{name: "he-aac v2", asc: []byte{0xeb, 0x09, 0x88, 0x00}, aot: 29, rate: 24000, channels: 1},
		// The trailing sync extension ffmpeg writes is kept in Config, not read.
		{name: "lc with sync extension", asc: []byte{0x12, 0x10, 0x56, 0xe5, 0x00}, aot: 2, rate: 44100, channels: 2},

		{name: "escaped object type 42 (usac)", asc: []byte{0xf9, 0x46, 0x40}, err: flv.ErrUnsupportedCodec, msg: "audio object type 42"},
		{name: "er aac ld", asc: []byte{0xb9, 0x90}, err: flv.ErrUnsupportedCodec, msg: "audio object type 23"},
		{name: "channel configuration 11", asc: []byte{0x16, 0x58}, err: flv.ErrUnsupportedCodec, msg: "channel configuration 11"},
		{name: "channel configuration 0", asc: []byte{0x12, 0x00}, err: flv.ErrUnsupportedCodec, msg: "channel configuration 0"},
		{name: "sbr over usac", asc: []byte{0x2b, 0x11, 0xfc, 0xa0}, err: flv.ErrUnsupportedCodec, msg: "audio object type 42 inside SBR"},

		{name: "one byte", asc: []byte{0x12}, err: flv.ErrMalformed, msg: "need at least 2"},
		{name: "object type 0", asc: []byte{0x02, 0x10}, err: flv.ErrMalformed, msg: "audio object type 0"},
		{name: "reserved frequency index 13", asc: []byte{0x16, 0x90}, err: flv.ErrMalformed, msg: "index 13 reserved"},
		{name: "explicit frequency 0", asc: []byte{0x17, 0x80, 0x00, 0x00, 0x10}, err: flv.ErrMalformed, msg: "explicit 0 Hz"},
		{name: "explicit frequency truncated", asc: []byte{0x17, 0x80, 0x00}, err: flv.ErrMalformed, msg: "truncated"},
		{name: "reserved channel configuration 9", asc: []byte{0x12, 0x48}, err: flv.ErrMalformed, msg: "channel configuration 9"},
		{name: "sbr extension truncated", asc: []byte{0x2b, 0x11}, err: flv.ErrMalformed, msg: "SBR extension truncated"},
		{name: "oversized", asc: cat([]byte{0x12, 0x10}, make([]byte, 300)), err: flv.ErrMalformed, msg: "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkt, err := flv.ParseAudio(cat([]byte{0xaf, 0}, tc.asc))
			if tc.err != nil {
				checkPacket(t, pkt, err, flv.Packet{}, tc.err, tc.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tr := pkt.Track
			if tr.AudioObjectType != tc.aot || tr.SampleRate != tc.rate || int(tr.Timescale) != tc.rate || tr.Channels != tc.channels {
				t.Errorf("aot %d, %d Hz (timescale %d), %d channels; want aot %d, %d Hz, %d channels",
					tr.AudioObjectType, tr.SampleRate, tr.Timescale, tr.Channels, tc.aot, tc.rate, tc.channels)
			}
			if want := "mp4a.40." + itoa(tc.aot); tr.CodecString != want {
				t.Errorf("codec string %q, want %q", tr.CodecString, want)
			}
			if string(tr.Config) != string(tc.asc) {
				t.Errorf("Config % x, want % x", tr.Config, tc.asc)
			}
		})
	}
}
