// Command flvladder merges single-track FLV clips, the renditions of one
// ladder encoded from the same source on the same timeline (keyframes on the
// same frames), into one Enhanced RTMP v2 multitrack FLV file: clip i's video
// becomes video track i, the first clip's audio the publish's audio. The
// default form is OBS's (track 0 plain ExHeader, the others OneTrack); -form
// manytracks packs each instant's video into one ManyTracks message.
//
//	flvladder -o ladder.flv 1080p.flv 720p.flv 360p.flv
//
// Debian 12's ffmpeg (5.1) cannot write multitrack FLV; rtmpload publishes
// the result as it is (testdata/make-ladder.sh, .ci/bench-e2e.sh CODEC=ladder).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("flvladder", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output FLV file (required)")
	form := fs.String("form", "onetrack", "onetrack (as OBS sends) or manytracks")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() == 0 || (*form != "onetrack" && *form != "manytracks") {
		fmt.Fprintln(stderr, "usage: flvladder -o OUT.flv [-form onetrack|manytracks] RENDITION0.flv RENDITION1.flv ...")
		return 2
	}
	var clips []*rtmpclient.Clip
	for _, p := range fs.Args() {
		c, err := rtmpclient.ReadFLV(p)
		if err != nil {
			fmt.Fprintln(stderr, "flvladder:", err)
			return 1
		}
		clips = append(clips, c)
	}
	tags, err := rtmpclient.LadderTags(clips)
	if err == nil && *form == "manytracks" {
		tags, err = rtmpclient.RepackMultitrack(tags, rtmpclient.ManyTracks)
	}
	if err == nil {
		err = os.WriteFile(*out, rtmpclient.FLVFile(clips[0].Meta, tags), 0o644)
	}
	if err != nil {
		fmt.Fprintln(stderr, "flvladder:", err)
		return 1
	}
	return 0
}
