package packager_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestMPDSchema validates every golden MPD (classic live, low-latency live with
// its SegmentTemplate@duration Period and ProducerReferenceTime, republished,
// static) against the ISO/IEC 23009-1 schema with xmllint, offline.
func TestMPDSchema(t *testing.T) {
	xmllint := lookTool(t, "xmllint")
	mpds, err := filepath.Glob("testdata/golden/*/*/index.mpd")
	if err != nil || len(mpds) < 8 {
		t.Fatalf("golden MPDs: %v %v", mpds, err)
	}
	for _, mpd := range mpds {
		t.Run(mpd, func(t *testing.T) { validateMPD(t, xmllint, mpd) })
	}
}

// validateMPD runs xmllint on the MPD file at path against
// testdata/dash-schema, with the catalog that keeps it off the network.
func validateMPD(t *testing.T, xmllint, path string) {
	t.Helper()
	dir, err := filepath.Abs("testdata/dash-schema")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(xmllint, "--noout", "--nonet", "--schema", filepath.Join(dir, "DASH-MPD.xsd"), path)
	cmd.Env = append(os.Environ(), "XML_CATALOG_FILES="+filepath.Join(dir, "catalog.xml"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s does not validate: %v\n%s", path, err, out)
	}
}
