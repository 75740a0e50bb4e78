//! The QEMU launcher boots firmware and reads and writes its serial console.

use std::time::Duration;

use xenlift_testkit::qemu::{Firmware, Machine};

#[test]
fn uefi_shell_answers_on_the_serial_console() {
    let mut vm = Machine::new(Firmware::Uefi).memory_mib(512).start();
    vm.wait_for("Shell>", Duration::from_secs(180))
        .unwrap_or_else(|e| panic!("{e}"));
    // `ver` prints text that is not in the command typed, so a match proves
    // the command ran, not just that the shell echoed our keys.
    vm.send("ver\r");
    vm.wait_for("EDK II", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
}
