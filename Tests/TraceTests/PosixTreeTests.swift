import Foundation
import Testing
@testable import Trace

/// The private scratch directories `bisect --kernels` uses.
@Suite("Temporary directories")
struct PosixTreeTests {
    @Test("mkdtemp gives a fresh 0700 directory; removeTree removes it and all under it, not what a link names")
    func scratch() throws {
        let a = try #require(Posix.makeTemporaryDirectory(prefix: NSTemporaryDirectory() + "vfiotrace-test-"))
        let b = try #require(Posix.makeTemporaryDirectory(prefix: NSTemporaryDirectory() + "vfiotrace-test-"))
        #expect(a != b)
        let mode = (try FileManager.default.attributesOfItem(atPath: a)[.posixPermissions] as? Int) ?? 0
        #expect(mode == 0o700)
        // Inside: nested files, and a link to a file outside that must survive.
        try FileManager.default.createDirectory(atPath: a + "/x/y", withIntermediateDirectories: true)
        try "1".write(toFile: a + "/x/y/f", atomically: true, encoding: .utf8)
        try "keep".write(toFile: b + "/outside", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: a + "/x/link", withDestinationPath: b)
        Posix.removeTree(a)
        #expect(!FileManager.default.fileExists(atPath: a))
        #expect(FileManager.default.fileExists(atPath: b + "/outside"))
        Posix.removeTree(b)
        #expect(!FileManager.default.fileExists(atPath: b))
    }
}
