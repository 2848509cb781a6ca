package flv_test

// FLV tag types (FLV 10.1, E.4.1), as testkit.FLVTags reports them.
const (
	tagAudio = 8
	tagVideo = 9
)
