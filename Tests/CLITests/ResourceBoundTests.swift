import Foundation
import Testing
@testable import Trace
#if canImport(Glibc)
import Glibc
#endif

/// No input of at most 1 MiB makes a command use more than 1 GiB of memory
/// or run longer than 30 s, whatever its compression ratio or what its
/// recorded outcomes claim. Each command runs as its own process under GNU
/// time, which reports the peak resident set the kernel measured, so what
/// is bounded is what a user would see.
///
/// The 30 s are for an optimised build: `scripts/test` runs this suite with
/// `VFIOTRACE_BINARY` naming its release build (a debug build is about four
/// times slower and the suite would take five minutes).
@Suite("Hostile inputs are bounded in memory and time", .serialized,
       .enabled(if: ProcessInfo.processInfo.environment["VFIOTRACE_BINARY"] != nil,
                "runs against a release build named by VFIOTRACE_BINARY (scripts/test does)"),
       .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/time"), "needs GNU time (scripts/setup-deps installs it)"))
struct ResourceBoundTests {
    static let memoryLimitKiB = 1 << 20
    static let timeLimit: Double = 30

    struct Measured: CustomStringConvertible {
        var status: Int32
        var peakKiB: Int
        var seconds: Double
        var timedOut: Bool
        var description: String { "exit \(status), \(peakKiB >> 10) MiB, \(String(format: "%.1f", seconds)) s" }
    }

    /// Runs the executable with output thrown away, under GNU time, in its
    /// own process group (killed whole at the time limit).
    func measure(_ args: [String], in dir: String) -> Measured {
        let report = dir + "/time.out"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attr, 0)
        let argv = (["/usr/bin/time", "-q", "-f", "%x %M", "-o", report, CLI.binary] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let start = Date()
        guard posix_spawn(&pid, "/usr/bin/time", &actions, &attr, argv, environ) == 0 else {
            return Measured(status: -1, peakKiB: 0, seconds: 0, timedOut: false)
        }
        var status: Int32 = 0
        var timedOut = false
        while waitpid(pid, &status, WNOHANG) != pid {
            if Date().timeIntervalSince(start) > Self.timeLimit, !timedOut {
                timedOut = true
                kill(-pid, SIGKILL)
            }
            usleep(20_000)
        }
        // GNU time writes "exit peak" (exit is the command's status, or
        // 128 + signal after "Command terminated by signal N").
        let words = (try? String(contentsOfFile: report, encoding: .utf8))?.split(whereSeparator: \.isWhitespace) ?? []
        var exit: Int32 = -1
        if let i = words.firstIndex(of: "signal"), i + 1 < words.count, let sig = Int32(words[i + 1]) { exit = 128 + sig }
        else if words.count >= 2, let x = Int32(words[words.count - 2]) { exit = x }
        let peak = words.last.flatMap { Int($0) } ?? 0
        return Measured(status: timedOut ? 137 : exit, peakKiB: peak, seconds: Date().timeIntervalSince(start), timedOut: timedOut)
    }

    /// One zstd frame holding `count` copies of `record`, with a correct
    /// frame end (count and CRC): a frame that checks out, compressed
    /// thousands of times.
    static func bombFrame(record: Event, count: Int) throws -> [UInt8] {
        var codec = EventCodec()
        var one = ByteWriter()
        codec.encode(record, into: &one)
        var frame = ByteWriter(capacity: one.bytes.count * count + 32)
        for _ in 0..<count { frame.bytes.append(contentsOf: one.bytes) }
        var end = ByteWriter()
        end.varint(UInt64(count))
        end.u32(CRC32C.checksum(frame.bytes))
        frame.u8(RecordType.frameEnd.rawValue)
        frame.blob(end.bytes)
        return try ZstdCompressor(level: 19).compressFrame(frame.bytes)
    }

    /// The hostile inputs, each at most 1 MiB, by name.
    static func inputs(in dir: String) throws -> [String: String] {
        var files: [String: String] = [:]
        func binary(_ name: String, _ frames: [UInt8]) {
            let path = dir + "/" + name
            _ = FileManager.default.createFile(atPath: path, contents: Data(TraceHeader().encoded() + frames))
            files[name] = path
        }
        func text(_ name: String, _ body: String) {
            let path = dir + "/" + name
            _ = FileManager.default.createFile(atPath: path, contents: Data(body.utf8))
            files[name] = path
        }
        // Ten million tiny records in one frame (the 285 bytes a record once cost).
        binary("tiny-records.vft", try bombFrame(record: Event(.marker(Marker(""))), count: 10_000_000))
        // Five million loss records: `verify` lists each loss record.
        binary("loss-records.vft", try bombFrame(record: Event(.loss(Loss(count: 1, reason: ""))), count: 5_000_000))
        // Half a million opens without a close (the fd search was quadratic).
        binary("opens.vft", try bombFrame(record: Event(.open(Open(path: "/dev/vfio/vfio", result: .ok(3)))), count: 500_000))
        // 8 TiB less a page mapped and queried, the recorded bitmap
        // alternating bits: 2^30 runs if anything lists them.
        text("alternating.vfs", """
            open /dev/vfio/vfio -> 3
            open /dev/vfio/20 -> 4
            group_set_container kind=emulated -> ok
            set_iommu TYPE1v2 -> ok
            map_dma iova=0 size=0x7fffffff000 -> ok
            dirty start -> ok
            dirty get iova=0 size=0x7fffffff000 -> ok dirty=bytes(55*268435455,15)

            """)
        return files
    }

    @Test("every command stays under 1 GiB and 30 s on every hostile input")
    func bounded() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var files = try Self.inputs(in: dir)
        // The text bomb as a binary trace too (compile is itself under test).
        let compiled = dir + "/alternating.vft"
        let c = measure(["compile", files["alternating.vfs"]!, "-o", compiled], in: dir)
        #expect(c.status == 0 && c.peakKiB < Self.memoryLimitKiB, "compile: \(c)")
        files["alternating.vft"] = compiled
        var failures: [String] = []
        for (name, path) in files.sorted(by: { $0.key < $1.key }) {
            let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            #expect(size <= 1 << 20, "\(name) is \(size) bytes, more than the 1 MiB the bound is for")
            var commands: [[String]] = [["replay", path], ["diff", path, path]]
            if name.hasSuffix(".vft") {
                commands += [["cat", path], ["verify", path], ["info", path], ["recover", path, "-o", dir + "/recovered.vft"]]
            }
            for args in commands {
                let m = measure(args, in: dir)
                let label = "\(args.first!) \(name)"
                if m.status < 0 || m.status > 2 { failures.append("\(label): exit \(m.status)") }
                if m.timedOut { failures.append("\(label): still running after \(Int(Self.timeLimit)) s") }
                if m.peakKiB >= Self.memoryLimitKiB || m.peakKiB == 0 { failures.append("\(label): peak \(m.peakKiB) KiB") }
                print("bound: \(label): \(m)")
            }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "; "))")
    }
}
