import Foundation
import Testing

@Suite("vfiotrace record", .serialized)
struct RecordCLITests {
    @Test("records VFIO opens of a program and its children (forks followed), passes the exit status through")
    func opensAndExitStatus() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = dir + "/t.vft"
        // No VFIO on the test machine: the opens fail, and are recorded.
        let r = try CLI.run(["record", "-o", t, "--", "sh", "-c", "cat /dev/vfio/vfio; (cat /dev/vfio/42); cat /etc/hostname; exit 3"])
        #expect(r.code == 3, "\(r.err)")
        #expect(r.err.contains("recorded 2 events"), "\(r.err)")
        let cat = try CLI.run(["cat", t])
        #expect(cat.out.contains("!mode ptrace"))
        #expect(cat.out.contains("open /dev/vfio/vfio -> ENOENT") && cat.out.contains("open /dev/vfio/42 -> ENOENT"), "\(cat.out)")
        #expect(!cat.out.contains("hostname"))
        #expect(try CLI.run(["verify", t]).code == 0)
    }

    @Test("a program that cannot be run is reported; no command is a usage error")
    func errors() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let missing = try CLI.run(["record", "-o", dir + "/m.vft", "--", "/nonexistent/program"])
        #expect(missing.code == 127, "\(missing.code) \(missing.err)")
        let none = try CLI.run(["record", "-o", dir + "/n.vft"])
        #expect(none.code == 2 && none.err.contains("nothing to run"))
    }

    @Test("a recorder killed with SIGKILL leaves a trace whose closed frames are readable")
    func killedRecorder() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = dir + "/k.vft"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = ["record", "-o", t, "--", "sh", "-c", "for i in 1 2 3 4 5 6 7 8; do cat /dev/vfio/vfio 2>/dev/null; done; sleep 4"]
        try p.run()
        // The opens happen at once; the writer closes a frame within 250 ms.
        usleep(1_500_000)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let cat = try CLI.run(["cat", t])
        #expect(cat.out.components(separatedBy: "open /dev/vfio/vfio -> ENOENT").count - 1 == 8, "\(cat.out)\(cat.err)")
        let verify = try CLI.run(["verify", t])
        #expect(verify.code == 1, "no index after SIGKILL: \(verify.out)")
        #expect(try CLI.run(["recover", t, "-o", dir + "/saved.vft"]).code == 0)
    }

    /// Only the dispositions are compared: the mask a child gets from
    /// Foundation's Process depends on the spawning thread, so two spawns
    /// from a test process need not agree (the recorder passes its own on).
    @Test("the program gets the signal dispositions it would have had without the recorder")
    func signalsRestored() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let show = "grep -E '^SigIgn' /proc/$$/status"
        let direct = Process()
        direct.executableURL = URL(fileURLWithPath: "/bin/sh")
        direct.arguments = ["-c", show + " > \(dir)/direct"]
        try direct.run()
        direct.waitUntilExit()
        let r = try CLI.run(["record", "-o", dir + "/s.vft", "--", "sh", "-c", show + " > \(dir)/recorded"])
        #expect(r.code == 0, "\(r.err)")
        let a = try String(contentsOfFile: dir + "/direct", encoding: .utf8)
        let b = try String(contentsOfFile: dir + "/recorded", encoding: .utf8)
        #expect(a.contains("SigIgn") && a == b, "direct:\n\(a)recorded:\n\(b)")
    }

    @Test("a trace that cannot be written (file size limit) stops recording, not the program")
    func writeFailure() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = dir + "/f.vft"
        // 2 KiB allowed; a few thousand recorded opens in frames closed every 250 ms exceed it.
        let inner = "i=0; while [ $i -lt 400 ]; do cat /dev/vfio/vfio 2>/dev/null; i=$((i+1)); done; touch \(dir)/done; exit 5"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", "ulimit -f 2; exec \"$0\" record -o \(t) -- sh -c '\(inner)'", CLI.binary]
        let e = Pipe()
        p.standardError = e
        try p.run()
        let err = String(decoding: e.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 2, "\(err)")
        #expect(err.contains(t) && err.contains("writing the trace failed") && err.contains("exited 5"), "\(err)")
        #expect(FileManager.default.fileExists(atPath: dir + "/done"), "the program must run to its end")
        // What was written before the limit is kept.
        let rec = try CLI.run(["recover", t, "-o", dir + "/kept.vft"])
        #expect(rec.code == 0, "\(rec.err)")
        #expect(try CLI.run(["cat", dir + "/kept.vft"]).out.contains("open /dev/vfio/vfio -> ENOENT"))
    }
}

@Suite("vfiotrace record --pid", .serialized)
struct RecordAttachTests {
    @Test("attaches to a running process, follows its children, and on SIGINT detaches leaving it running")
    func attachAndDetach() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let target = Process()
        target.executableURL = URL(fileURLWithPath: "/bin/sh")
        target.arguments = ["-c", "while true; do cat /dev/vfio/vfio 2>/dev/null; sleep 0.1; done"]
        try target.run()
        defer { target.terminate() }
        let t = dir + "/a.vft"
        let rec = Process()
        rec.executableURL = URL(fileURLWithPath: CLI.binary)
        rec.arguments = ["record", "-o", t, "--pid", String(target.processIdentifier)]
        let err = Pipe()
        rec.standardError = err
        try rec.run()
        usleep(1_200_000)
        kill(rec.processIdentifier, SIGINT)
        rec.waitUntilExit()
        #expect(rec.terminationStatus == 0)
        #expect(target.isRunning, "the traced process must survive the detach")
        let cat = try CLI.run(["cat", t])
        let opens = cat.out.components(separatedBy: "open /dev/vfio/vfio -> ENOENT").count - 1
        #expect(opens >= 3, "\(cat.out)")
        #expect(try CLI.run(["verify", t]).code == 0)
        let missing = try CLI.run(["record", "-o", dir + "/x.vft", "--pid", "999999"])
        #expect(missing.code == 2 && missing.err.contains("999999"))
    }
}

@Suite("vfiotrace record --pins")
struct RecordPinsTests {
    /// This host has no VFIO driver loaded (or no tracefs), so --pins must
    /// refuse before it runs anything: exit 2, the reason, no trace. The
    /// lane where --pins really records is scripts/lab-lane (6.1, 6.12).
    @Test("refuses with the reason, before running the program, where the kernel cannot trace pins",
          .enabled(if: access("/sys/module/vfio", F_OK) != 0 || access("/sys/kernel/tracing/kprobe_events", F_OK) != 0,
                   "this host could really trace pins: the VM lab lane covers that"))
    func refusesWithoutVFIO() throws {
        let dir = CLI.tempDir()
        let r = try CLI.run(["record", "--pins", "-o", dir + "/p.vft", "--", "/bin/sh", "-c", "touch \(dir)/ran"])
        #expect(r.code == 2)
        #expect(r.err.contains("--pins"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/ran"), "the program must not run unrecorded")
        #expect(!FileManager.default.fileExists(atPath: dir + "/p.vft"))
    }
}

@Suite("vfiotrace record: threads that exec", .serialized)
struct RecordExecTests {
    /// Built with the package (Tests/Fixtures/ThreadExec).
    static let fixture = (CLI.binary as NSString).deletingLastPathComponent + "/thread-exec-fixture"

    /// When a thread other than the leader execs, it takes over the
    /// leader's pid and its own id vanishes without an exit report; the
    /// execve's end is reported under the leader's pid. An attached
    /// recorder that keeps the leader's old syscall state takes that end
    /// for an entry and from then on reads every call backwards (it
    /// recorded cat's open as ENOSYS).
    @Test("a non-leader thread's exec: followed, recorded right, and the recording ends")
    func threadExec() throws {
        let dir = CLI.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = dir + "/e.vft"
        for attach in [false, true] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLI.binary)
            var target: Process? = nil
            if attach {
                let tp = Process()
                tp.executableURL = URL(fileURLWithPath: Self.fixture)
                tp.arguments = ["1000", "/bin/cat", "/dev/vfio/vfio"]
                tp.standardError = FileHandle.nullDevice
                try tp.run()
                target = tp
                p.arguments = ["record", "-o", t, "--pid", String(tp.processIdentifier)]
            } else {
                p.arguments = ["record", "-o", t, "--", Self.fixture, "0", "/bin/cat", "/dev/vfio/vfio"]
            }
            p.standardError = FileHandle.nullDevice
            try p.run()
            var waited = 0
            while p.isRunning && waited < 200 { usleep(100_000); waited += 1 }
            if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
            if let target, target.isRunning { target.terminate() }
            #expect(waited < 200, "the recorder must end when the program does (attach: \(attach))")
            if !attach { #expect(p.terminationStatus == 1, "cat's exit status") }
            let cat = try CLI.run(["cat", t, "--no-header"])
            #expect(cat.out.hasSuffix("open /dev/vfio/vfio -> ENOENT\n"), "attach: \(attach): \(cat.out)")
        }
    }
}
