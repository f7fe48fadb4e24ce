/**
 * LZ4 decoding for the test CAS server: xet clients compress xorb chunks with LZ4 *frames*
 * (magic 0x184D2204, as lz4_flex's FrameEncoder and huggingface.js' vendored lz4js write them),
 * optionally after "byte grouping 4" (BG4). The decoder is the one bucketsync's own Xet reader
 * uses (src/stores/hf/xet-codec.ts, written from the public LZ4 frame/block format descriptions);
 * chunks uploaded by the real `hf`/hf_xet (test/conformance) are what checks it.
 */
export { bg4Regroup, decodeChunk, lz4DecompressFrames } from '../../src/stores/hf/xet-codec.js';
