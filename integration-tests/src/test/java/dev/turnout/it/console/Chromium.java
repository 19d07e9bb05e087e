package dev.turnout.it.console;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;

/**
 * Debian's headless chromium driven through its chromedriver (packages {@code chromium} and
 * {@code chromium-driver}; {@code .ci/run} installs them when missing). The network here is closed, so everything
 * that would reach out (updates, sync, QUIC probing, the first-run page) is switched off, and each browser gets a
 * fresh profile directory.
 */
public final class Chromium {
  public static final Path BINARY = Path.of(System.getenv().getOrDefault("TURNOUT_CHROMIUM", "/usr/bin/chromium"));
  public static final Path DRIVER = Path.of(System.getenv().getOrDefault("TURNOUT_CHROMEDRIVER",
      "/usr/bin/chromedriver"));

  private Chromium() {}

  /** Whether both the browser and its driver are installed. */
  public static boolean installed() {
    return Files.isExecutable(BINARY) && Files.isExecutable(DRIVER);
  }

  /** Why the browser tests cannot run here, for an assumption's message. */
  public static String missing() {
    return "chromium (" + BINARY + ") or chromedriver (" + DRIVER + ") is not installed:"
        + " apt-get install -y chromium chromium-driver (.ci/run does it)";
  }

  /** A headless browser with a window of {@code width} x {@code height} and a profile in {@code profile}. */
  public static ChromeDriver start(Path profile, int width, int height) throws IOException {
    Files.createDirectories(profile);
    ChromeOptions options = new ChromeOptions();
    options.setBinary(BINARY.toFile());
    options.addArguments("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--user-data-dir=" + profile.toAbsolutePath(),
        "--window-size=" + width + "," + height);
    ChromeDriverService service = new ChromeDriverService.Builder()
        .usingDriverExecutable(new File(DRIVER.toString())).usingAnyFreePort()
        .withLogFile(profile.resolve("chromedriver.log").toFile()).build();
    ChromeDriver driver = new ChromeDriver(service, options);
    driver.manage().timeouts().pageLoadTimeout(Duration.ofSeconds(30));
    driver.manage().timeouts().scriptTimeout(Duration.ofSeconds(30));
    return driver;
  }
}
