"""The web UI in a real headless Chromium (Selenium), against a real `baton up`.

A user opens the pipelines page, opens a pipeline, triggers it from the form, watches the run
turn green live (server-sent events recolour the graph: the page is never reloaded), and reads
a task's log. Another test tails a running task's log live. On failure a screenshot is saved
to /tmp/baton-browser-<test>.png.
"""

import contextlib
import os
import re
import time

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from conftest import write_pipelines

CHROMIUM = os.environ.get("BATON_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("BATON_CHROMEDRIVER", "/usr/bin/chromedriver")

# `prepare` sleeps so the run page is open while the run is still going: the test then sees
# the graph change colour through live updates rather than on first render.
DEMO = """
name: browser_demo
owner: qa_team
description: A short pipeline the browser test triggers from the UI.
params:
  greeting: {default: hello, type: string, description: What to say}
  repeat: {default: 2, type: integer, description: How many times}
  shout: {default: false, type: boolean}
tasks:
  prepare:
    run: echo preparing; sleep 2
  say:
    run: for i in $(seq "$REPEAT"); do echo "say $GREETING $i"; done
    env: {GREETING: "{{ params.greeting }}", REPEAT: "{{ params.repeat }}"}
    needs: [prepare]
  finish:
    run: echo browser-e2e-finished
    needs: [say]
"""

TICKER = """
name: ticker
owner: qa_team
tasks:
  tick:
    run: for i in 1 2 3 4 5 6 7 8; do echo "tick $i"; sleep 0.5; done
"""


@pytest.fixture
def browser():
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@contextlib.contextmanager
def screenshot_on_failure(driver, name):
    try:
        yield
    except BaseException:
        path = f"/tmp/baton-browser-{name}.png"
        with contextlib.suppress(WebDriverException):
            driver.save_screenshot(path)
            print(f"screenshot saved to {path}; page at {driver.current_url}")
        raise


def console_errors(driver):
    """Console errors other than expected 404s; a blocked script or style (CSP) shows up here."""
    return [
        entry for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and "status of 404" not in entry["message"]
    ]


def node_class(driver, task):
    return driver.find_element(By.CSS_SELECTOR, f'svg.dag g.node[data-task="{task}"]').get_attribute("class")


def test_trigger_from_the_ui_and_watch_the_run_live(tmp_path, baton_server, browser):
    server = baton_server(write_pipelines(tmp_path / "pipelines", {"browser_demo": DEMO}))
    driver = browser
    wait = WebDriverWait(driver, 30)
    with screenshot_on_failure(driver, "trigger"):
        # The pipelines page lists the pipeline with its owner.
        driver.get(server.url + "/")
        assert driver.title == "Pipelines · Baton"
        row = driver.find_element(By.XPATH, "//tr[.//a[@href='/pipelines/browser_demo']]")
        assert "qa_team" in row.text
        assert "manual only" in row.text

        # The pipeline page draws the graph: one node per task.
        row.find_element(By.LINK_TEXT, "browser_demo").click()
        wait.until(EC.title_is("browser_demo · Baton"))
        nodes = driver.find_elements(By.CSS_SELECTOR, "svg.dag g.node")
        assert sorted(node.get_attribute("data-task") for node in nodes) == ["finish", "prepare", "say"]

        # Trigger from the form, changing params of three input types.
        greeting = driver.find_element(By.NAME, "param.greeting")
        greeting.clear()
        greeting.send_keys("hi from chromium")
        repeat = driver.find_element(By.NAME, "param.repeat")
        assert repeat.get_attribute("type") == "number"
        repeat.clear()
        repeat.send_keys("3")
        shout = driver.find_element(By.CSS_SELECTOR, "input[type=checkbox][name='param.shout']")
        shout.click()
        driver.find_element(By.CSS_SELECTOR, "form.trigger-form button[type=submit]").click()
        wait.until(EC.url_matches(r"/runs/\d+"))
        run_id = int(re.search(r"/runs/(\d+)", driver.current_url).group(1))
        assert "Run created" in driver.find_element(By.CSS_SELECTOR, ".flash").text

        # Mark this page: a reload would lose the mark.
        driver.execute_script("window.__batonMark = 'same page'")
        first = node_class(driver, "finish")
        assert "st-success" not in first, "the run should still be going when its page opens"

        # The graph turns green through live updates.
        wait.until(lambda d: "st-success" in node_class(d, "finish"))
        wait.until(lambda d: "st-success" in d.find_element(By.CSS_SELECTOR, "[data-live-state='run']").get_attribute("class"))
        for task in ("prepare", "say", "finish"):
            assert "st-success" in node_class(driver, task)
        assert driver.execute_script("return window.__batonMark") == "same page", "the page was reloaded"
        # The regions refreshed too: one Gantt bar per task, all green.
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "svg.gantt rect.bar.st-success")) == 3)
        assert driver.execute_script("return window.__batonMark") == "same page"

        run = server.get(f"/api/v1/runs/{run_id}").json()
        assert run["state"] == "success"
        assert run["params"] == {"greeting": "hi from chromium", "repeat": 3, "shout": True}

        # A task's log, reached from the task table.
        driver.find_element(By.CSS_SELECTOR, "table.tasks a[href$='/tasks/say']").click()
        wait.until(EC.presence_of_element_located((By.ID, "log")))
        log = driver.find_element(By.ID, "log").text
        assert "say hi from chromium 1" in log
        assert "say hi from chromium 3" in log
        assert console_errors(driver) == []


def test_a_running_task_log_is_tailed_live(tmp_path, baton_server, browser):
    server = baton_server(write_pipelines(tmp_path / "pipelines", {"ticker": TICKER}))
    driver = browser
    with screenshot_on_failure(driver, "tail"):
        result = server.post("/api/v1/runs", {"pipeline": "ticker"})
        assert result.status == 201, result
        run_id = result.json()["id"]
        deadline = time.monotonic() + 20
        while True:
            attempts = server.get(f"/api/v1/runs/{run_id}/tasks/tick/attempts").json()["items"]
            if attempts:
                break
            assert time.monotonic() < deadline, "the task did not start"
            time.sleep(0.05)

        driver.get(f"{server.url}/runs/{run_id}/tasks/tick")
        driver.execute_script("window.__batonMark = 'same page'")
        log = driver.find_element(By.ID, "log")
        assert log.get_attribute("data-stream"), "a running attempt's log is streamed"
        assert "tick 8" not in log.text
        WebDriverWait(driver, 30).until(lambda d: "tick 8" in d.find_element(By.ID, "log").text)
        text = driver.find_element(By.ID, "log").text
        assert [line for line in text.splitlines() if line.startswith("tick")] == [f"tick {i}" for i in range(1, 9)]
        WebDriverWait(driver, 30).until(
            lambda d: "st-success" in d.find_element(By.CSS_SELECTOR, "h1 [data-live-state='task']").get_attribute("class"))
        assert driver.execute_script("return window.__batonMark") == "same page"
        assert console_errors(driver) == []


def test_pages_work_without_javascript(tmp_path, baton_server):
    """Every read page is complete HTML: the same checks with a plain HTTP client."""
    server = baton_server(write_pipelines(tmp_path / "pipelines", {"browser_demo": DEMO}))
    run_id = server.post("/api/v1/runs", {"pipeline": "browser_demo"}).json()["id"]
    server.wait_for_run(run_id)
    for path, expected in [
        ("/", "browser_demo"),
        ("/pipelines/browser_demo", 'data-task="say"'),
        (f"/runs/{run_id}", 'class="gantt"'),
        (f"/runs/{run_id}/tasks/say", "say hello 2"),
        ("/runs", f'href="/runs/{run_id}"'),
    ]:
        page = server.get(path, headers={"Accept": "text/html"})
        assert page.status == 200, (path, page)
        assert page.content_type.startswith("text/html")
        assert expected in page.text, path
    missing = server.get("/pipelines/nope", headers={"Accept": "text/html"})
    assert missing.status == 404 and missing.content_type.startswith("text/html")


def mlflow(server, path, body):
    result = server.post("/api/2.0/mlflow/" + path, body)
    assert result.status == 200, (path, result)
    return result.json()


def test_approve_a_model_version_from_the_models_page(tmp_path, baton_server, browser):
    """A tracked run and two versions made through MLflow's REST API; a user approves v2 from
    the model page's form and the models page then shows it as the approved version."""
    server = baton_server(write_pipelines(tmp_path / "pipelines", {"browser_demo": DEMO}))
    driver = browser
    wait = WebDriverWait(driver, 30)
    experiment = mlflow(server, "experiments/create", {"name": "browser-churn"})["experiment_id"]
    run = mlflow(server, "runs/create", {"experiment_id": experiment, "run_name": "browser-run"})["run"]["info"]["run_id"]
    mlflow(server, "runs/log-batch", {
        "run_id": run,
        "params": [{"key": "lr", "value": "0.1"}],
        "metrics": [{"key": "acc", "value": v, "timestamp": 1_700_000_000_000 + i, "step": i} for i, v in enumerate([0.6, 0.8, 0.9])],
    })
    mlflow(server, "registered-models/create", {"name": "browser-model"})
    for _ in range(2):
        mlflow(server, "model-versions/create", {"name": "browser-model", "source": f"runs:/{run}/model", "run_id": run})

    with screenshot_on_failure(driver, "approve"):
        driver.get(server.url + "/models")
        assert driver.title == "Models · Baton"
        row = driver.find_element(By.XPATH, "//tr[.//a[@href='/models/browser-model']]")
        assert "none" in row.text, "nothing approved yet"

        row.find_element(By.LINK_TEXT, "browser-model").click()
        wait.until(EC.title_is("browser-model · Baton"))
        form = driver.find_element(By.CSS_SELECTOR, "form[action='/models/browser-model/approve']")
        form.find_element(By.CSS_SELECTOR, "select[name=version] option[value='2']").click()
        note = form.find_element(By.NAME, "note")
        note.send_keys("approved from chromium")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(EC.url_contains("done=approved"))
        assert "Approved" in driver.find_element(By.CSS_SELECTOR, ".flash").text
        audit = driver.find_element(By.ID, "audit").text
        assert "approved from chromium" in audit
        assert "champion" in driver.find_element(By.ID, "v2").text

        driver.find_element(By.LINK_TEXT, "Models").click()
        wait.until(EC.title_is("Models · Baton"))
        row = driver.find_element(By.XPATH, "//tr[.//a[@href='/models/browser-model']]")
        approved = row.find_element(By.CSS_SELECTOR, "a.alias.champion")
        assert approved.text == "v2"

        # The run's page draws its metric and the experiment lists the run.
        driver.get(f"{server.url}/experiments/{experiment}")
        assert driver.find_element(By.LINK_TEXT, "browser-run")
        driver.find_element(By.LINK_TEXT, "browser-run").click()
        wait.until(EC.presence_of_element_located((By.ID, "metric-acc")))
        assert driver.find_elements(By.CSS_SELECTOR, "#metric-acc svg.line-chart path")
        driver.save_screenshot("/tmp/baton-browser-registry-run.png")
        assert console_errors(driver) == []
