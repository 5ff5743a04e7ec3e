import Foundation

/// The inputs kept under Tests/FuzzInputs/TARGET/: each once crashed, trapped
/// or leaked in a libFuzzer harness (scripts/fuzz) or a mutation run, and the
/// tests run it through the same entry point again. Shared by every test
/// module that replays some.
public enum FuzzInputs {
    public static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<2 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("FuzzInputs").path
    }()

    /// The kept inputs of `target`, by file name, in name order.
    public static func inputs(_ target: String) -> [(name: String, bytes: [UInt8])] {
        let dir = root + "/" + target
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
        return names.compactMap { n in FileManager.default.contents(atPath: dir + "/" + n).map { (n, [UInt8]($0)) } }
    }
}
