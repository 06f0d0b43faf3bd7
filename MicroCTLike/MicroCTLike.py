"""MicroCTLike: micro-CT-like volumes from clinical CT and trabecular bone microstructure.

The module file stays thin: every decision lives in ``MicroCTLikeLib.mrml`` (pure Python,
tested with pytest and a real MRML scene outside Slicer). Order: Module -> parameter node ->
Widget -> Logic -> Test.
"""

import importlib
import importlib.util
import logging
import os
import pathlib
import sys
from typing import Annotated

import qt
import slicer
import vtk
from slicer import vtkMRMLMarkupsROINode, vtkMRMLScalarVolumeNode, vtkMRMLTableNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

MODULE_DIR = os.path.dirname(os.path.abspath(__file__))
SAMPLE_NAME = "SimulatedVertebraMDCT"
#: Choices of the panel's combo boxes (Testing/Python/test_slicer_module.py checks them against the library).
DEVICES = ["auto", "cuda", "cpu"]
REGIONS = ["vois", "whole"]
THRESHOLD_METHODS = ["isodata", "ij_isodata", "default", "otsu", "midpoint"]
TB_SP_POLICIES = ["margin", "clear_outside", "outside_bone"]


#
# MicroCTLike
#
class MicroCTLike(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MicroCTLike")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Quantification")]
        self.parent.dependencies = ["Markups"]
        self.parent.contributors = ["MicroCTLike project (open-source contributors)"]
        self.parent.helpText = _(
            "Generate a micro-CT-like volume from a clinical CT (MDCT) of a lumbar vertebra with a FUNIT "
            "generator, place the two standardized 15 mm x 5 mm cylindrical VOIs and measure BV/TV, Tb.Th and "
            "Tb.Sp exactly as BoneJ does. The bundled generator is trained on simulated data only and is not "
            "validated on patients. See the project README for the step-by-step tutorial."
        )
        self.parent.acknowledgementText = _(
            "Reproduces and extends: 'Exploring the possibility of measuring vertebrae bone structure metrics "
            "using MDCT images: an unpaired image-to-image translation method', Bioengineering 2023, 10(6):716. "
            "Morphometry follows BoneJ / Fiji LocalThickness (Dougherty and Kunzelmann 2007; Doube et al. 2010)."
        )
        slicer.app.connect("startupCompleted()", registerSampleData)


def registerSampleData():
    """Register a simulated MDCT vertebra (bundled with the module) as sample data."""
    import SampleData

    samplePath = pathlib.Path(MODULE_DIR) / "Resources" / "SampleData" / f"{SAMPLE_NAME}.nrrd"
    if not samplePath.is_file():
        return
    SampleData.SampleDataLogic.registerCustomSampleDataSource(
        category="MicroCTLike",
        sampleName=SAMPLE_NAME,
        thumbnailFileName=os.path.join(MODULE_DIR, "Resources", "Icons", "MicroCTLike.png"),
        uris=samplePath.resolve().as_uri(),
        fileNames=f"{SAMPLE_NAME}.nrrd",
        nodeNames=SAMPLE_NAME,
        loadFileType="VolumeFile",
    )


#
# MicroCTLikeParameterNode
#
@parameterNodeWrapper
class MicroCTLikeParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    outputVolume: vtkMRMLScalarVolumeNode
    modelPath: pathlib.Path  # Path() (shown empty) means the bundled generator
    device: Annotated[str, Choice(DEVICES)] = "auto"
    region: Annotated[str, Choice(REGIONS)] = "vois"
    superiorVOI: vtkMRMLMarkupsROINode
    inferiorVOI: vtkMRMLMarkupsROINode
    autoRemeasure: bool = True
    thresholdMethod: Annotated[str, Choice(THRESHOLD_METHODS)] = "isodata"
    tbSpPolicy: Annotated[str, Choice(TB_SP_POLICIES)] = "margin"
    metricsTable: vtkMRMLTableNode


def chosenPath(path):
    """None when the path parameter holds no choice (``Path()`` is ``.`` and truthy), else the path."""
    return None if path is None or str(path) in ("", ".") else pathlib.Path(path)


#
# MicroCTLikeWidget
#
class MicroCTLikeWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._runner = None
        self._runnerTimer = None
        self._remeasureTimer = None
        self._voiFollower = None
        self._measuring = False
        self.workerThreads = None  # CPU threads of the generation worker (None: torch's default)
        VTKObservationMixin.__init__(self)
        ScriptedLoadableModuleWidget.__init__(self, parent)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MicroCTLike.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = MicroCTLikeLogic()
        self.ui.generationProgressBar.visible = False  # shown while a generation or measurement runs
        # Only volumes this module generated can be the output: the input is never offered (never overwritten).
        self.ui.outputVolumeSelector.addAttribute("vtkMRMLScalarVolumeNode", "MicroCTLike.Output", "micro-CT-like")
        # One ROI per place action; the size is the standard one whatever is drawn (the follower restores it).
        self.ui.voiPlaceWidget.placeMultipleMarkups = slicer.qSlicerMarkupsPlaceWidget.ForcePlaceSingleMarkup

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.generateButton.connect("clicked(bool)", self.onGenerateButton)
        self.ui.placeStandardVOIsButton.connect("clicked(bool)", self.onPlaceStandardVOIsButton)
        self.ui.measureButton.connect("clicked(bool)", self.onMeasureButton)
        self.ui.exportCsvButton.connect("clicked(bool)", self.onExportCsvButton)
        self.ui.superiorVOISelector.connect("currentNodeChanged(vtkMRMLNode*)", self.ui.voiPlaceWidget.setCurrentNode)
        self._runnerTimer = qt.QTimer()
        self._runnerTimer.setInterval(200)
        self._runnerTimer.connect("timeout()", self.onRunnerTimer)
        self._remeasureTimer = qt.QTimer()  # a drag sends many events: re-measure once it settles
        self._remeasureTimer.setSingleShot(True)
        self._remeasureTimer.setInterval(700)
        self._remeasureTimer.connect("timeout()", self.onRemeasureTimer)
        from MicroCTLikeLib.mrml import VOIFollower

        self._voiFollower = VOIFollower(on_moved=self.onVOIMoved)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.cancelGeneration()
        if self._voiFollower is not None:
            self._voiFollower.close()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self._disconnectParameterNode()

    def _disconnectParameterNode(self) -> None:
        if self._parameterNode:
            if self._parameterNodeGuiTag is not None:
                self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
                self._parameterNodeGuiTag = None
            if self.hasObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified):
                self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)

    def onSceneStartClose(self, caller, event) -> None:
        self.cancelGeneration()
        if self._voiFollower is not None:
            self._voiFollower.close()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode and firstVolumeNode.GetAttribute("MicroCTLike.Output") is None:
                self._parameterNode.inputVolume = firstVolumeNode

    def setParameterNode(self, inputParameterNode) -> None:
        self._disconnectParameterNode()
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
            self._onParameterNodeModified()

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        p = self._parameterNode
        if p is None:
            return
        if self._voiFollower is not None:
            self._voiFollower.observe([p.superiorVOI, p.inferiorVOI])
        self._updateButtonStates()

    def _updateButtonStates(self) -> None:
        # Button states and tooltips are derived from the parameter node only (MicroCTLikeLib.mrml.action_states).
        from MicroCTLikeLib.mrml import action_states, table_is_stale

        p = self._parameterNode
        states = action_states(
            has_input=bool(p and p.inputVolume),
            has_vois=bool(p and (p.superiorVOI or p.inferiorVOI)),
            generating=self._runner is not None,
            measuring=self._measuring,
            has_table=bool(p and p.metricsTable),
            table_stale=bool(p and table_is_stale(p.metricsTable)),
        )
        for name, (enabled, tooltip, text) in states.items():
            button = getattr(self.ui, name)
            button.enabled = enabled
            button.toolTip = _(tooltip)
            button.text = _(text)

    def _log(self, text) -> None:
        self.ui.logTextEdit.appendPlainText(text)
        logging.info(text)

    # ---------------------------------------------------------------- generation
    def onGenerateButton(self) -> None:
        if self._runner is not None:
            self.cancelGeneration()
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to start generation."), waitCursor=True):
            if not self.logic.ensureDependencies():
                return
            p = self._parameterNode
            self.ui.logTextEdit.clear()
            modelPath = self.logic.modelPathOrBundled(p.modelPath)
            if p.region == "whole":
                estimate = self.logic.memoryEstimate(p.inputVolume, modelPath)
                self._log(_("Whole volume: ") + estimate["message"])
                if not slicer.app.testingEnabled() and not slicer.util.confirmOkCancelDisplay(
                        _("Generating the whole volume needs ") + estimate["message"] + _(". Continue?")):
                    return
                region = "whole"
            else:
                if not (p.superiorVOI or p.inferiorVOI):
                    self.onPlaceStandardVOIsButton()
                region = self.logic.generationRegion([p.superiorVOI, p.inferiorVOI])
                self._log(_("Generating around the VOIs (LPS box, mm): ") + str(region))
            self.ui.generationProgressBar.visible = True
            self.ui.generationProgressBar.value = 0
            self._runner = self.logic.startGeneration(
                p.inputVolume, modelPath=modelPath, device=p.device, region=region,
                onProgress=self._onProgress, onLog=self.ui.logTextEdit.appendPlainText, threads=self.workerThreads,
            )
            self._runnerTimer.start()
            self._updateButtonStates()

    def _onProgress(self, done, total, message) -> None:
        self.ui.generationProgressBar.maximum = max(total, 1)
        self.ui.generationProgressBar.value = done
        self.ui.generationProgressBar.setFormat(f"%v / %m {message}")

    def onRunnerTimer(self) -> None:
        runner = self._runner
        if runner is None:
            self._runnerTimer.stop()
            return
        code = runner.poll()
        if code is None:
            return
        self._runnerTimer.stop()
        self._runner = None
        self.ui.generationProgressBar.visible = False
        self._updateButtonStates()
        with slicer.util.tryWithErrorDisplay(_("Generation failed."), waitCursor=True):
            p = self._parameterNode
            outputNode = self.logic.finishGeneration(runner, code, p.outputVolume, p.inputVolume)
            p.outputVolume = outputNode
            from MicroCTLikeLib.mrml import generation_report_text

            self._log(generation_report_text(runner.summary))
            slicer.util.setSliceViewerLayers(background=p.inputVolume, foreground=outputNode, foregroundOpacity=0.5)

    def cancelGeneration(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            runner.cancel()  # kills the worker's whole process tree
            self.logic.cleanupGeneration(runner)
            self._log(_("Cancelled: the worker and its child processes were stopped, nothing was written."))
            if self._runnerTimer:
                self._runnerTimer.stop()
            self.ui.generationProgressBar.visible = False
            self._updateButtonStates()

    # ---------------------------------------------------------------- VOIs and metrics
    def onPlaceStandardVOIsButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to place the standard VOIs."), waitCursor=True):
            p = self._parameterNode
            superior, inferior = self.logic.placeStandardVOIs(p.inputVolume, [p.superiorVOI, p.inferiorVOI])
            p.superiorVOI = superior
            p.inferiorVOI = inferior

    def onVOIMoved(self, roiNode) -> None:
        from MicroCTLikeLib.mrml import mark_table_stale

        p = self._parameterNode
        if p is None or not p.metricsTable or self._measuring:
            return
        mark_table_stale(p.metricsTable)
        self._updateButtonStates()
        if p.autoRemeasure:
            self._remeasureTimer.start()

    def onRemeasureTimer(self) -> None:
        p = self._parameterNode
        if p is not None and p.metricsTable and p.autoRemeasure and self._runner is None:
            self.onMeasureButton()

    def onMeasureButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to measure."), waitCursor=True):
            if not self.logic.ensureDependencies():
                return
            p = self._parameterNode
            self._measuring = True
            self._updateButtonStates()
            self.ui.generationProgressBar.visible = True
            try:
                seconds = self.logic.warmUpMeasurement(onMessage=self._showBusy)
                if seconds is not None:
                    self._log(_("Thickness kernels compiled in {seconds:.1f} s (once per session).").format(seconds=seconds))

                def progress(done, total, message):
                    self._onProgress(done, total, message)
                    slicer.app.processEvents()

                tableNode = self.logic.measure(
                    [p.inputVolume, p.outputVolume], [p.superiorVOI, p.inferiorVOI],
                    thresholdMethod=p.thresholdMethod, tbSpPolicy=p.tbSpPolicy, tableNode=p.metricsTable,
                    progress=progress,
                )
            finally:
                self._measuring = False
                self.ui.generationProgressBar.visible = False
            p.metricsTable = tableNode
            self.ui.metricsTableView.setMRMLTableNode(tableNode)
            self._updateButtonStates()

    def _showBusy(self, message) -> None:
        self._log(message)
        slicer.util.showStatusMessage(message, 3000)
        slicer.app.processEvents()

    def onExportCsvButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to export the table."), waitCursor=True):
            path = qt.QFileDialog.getSaveFileName(None, _("Save metrics as CSV"), "microctlike_metrics.csv",
                                                  "CSV (*.csv)")
            if isinstance(path, str) and path:
                self._log(_("Saved ") + str(self.logic.exportCsv(self._parameterNode.metricsTable, path)))


#
# MicroCTLikeLogic
#
class MicroCTLikeLogic(ScriptedLoadableModuleLogic):
    """GUI-free logic: plain arguments, raises with clear messages, callable from scripts and tests."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return MicroCTLikeParameterNode(super().getParameterNode())

    # ---------------------------------------------------------------- dependencies
    @staticmethod
    def requirementsPath() -> str:
        """requirements.txt: installed into the module's Resources by CMake, or the source tree's top-level Resources."""
        for candidate in (os.path.join(MODULE_DIR, "Resources", "requirements.txt"),
                          os.path.join(os.path.dirname(MODULE_DIR), "Resources", "requirements.txt")):
            if os.path.isfile(candidate):
                return candidate
        raise RuntimeError(_("MicroCTLike is installed incompletely: Resources/requirements.txt is missing."))

    def requirements(self):
        """The pip requirements of the module (never numpy or SimpleITK: Slicer's own must stay)."""
        with open(self.requirementsPath(), encoding="utf-8") as handle:
            return [line.split("#")[0].strip() for line in handle if line.split("#")[0].strip()]

    @staticmethod
    def importName(requirement) -> str:
        import re

        return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip().lower().replace("-", "_")

    def missingRequirements(self):
        missing = []
        for requirement in self.requirements():
            try:
                found = importlib.util.find_spec(self.importName(requirement)) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                missing.append(requirement)
        return missing

    def ensureDependencies(self) -> bool:
        """torch through the PyTorch extension; the other packages after one confirmation; then import them.

        In testing mode (ctest) nobody can answer a dialog: packages are installed without one.
        Returns False when the user declines. Raises ImportError when a package is still missing.
        """
        testing = slicer.app.testingEnabled()
        if importlib.util.find_spec("torch") is None:
            try:
                import PyTorchUtils
            except ImportError:
                raise RuntimeError(_("This module needs the PyTorch extension. Install it from the Extensions Manager."))
            if not PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=not testing,
                                                                   torchVersionRequirement=">=2.2"):
                return False
        missing = self.missingRequirements()
        if missing:
            constraints = self._keepSlicerPackagesConstraints()
            try:
                if hasattr(slicer, "packaging") and hasattr(slicer.packaging, "pip_ensure"):  # Slicer >= 5.12
                    try:
                        slicer.packaging.pip_ensure(missing, constraints=constraints, prompt_install=not testing,
                                                    skip_in_testing=False, requester="MicroCTLike")
                    except RuntimeError as error:
                        if "declined" in str(error):
                            return False
                        raise
                else:  # Slicer 5.10
                    if not testing and not slicer.util.confirmOkCancelDisplay(
                            _("MicroCTLike needs these Python packages, which will be installed with pip:\n")
                            + "\n".join(missing)):
                        return False
                    slicer.util.pip_install(missing + ["-c", constraints])
            finally:
                os.remove(constraints)
            importlib.invalidate_caches()
        for requirement in self.requirements():
            importlib.import_module(self.importName(requirement))
        return True

    @staticmethod
    def _keepSlicerPackagesConstraints() -> str:
        """A pip constraints file holding numpy and SimpleITK at the versions Slicer ships (never changed)."""
        import tempfile
        from importlib import metadata

        lines = []
        for name in ("numpy", "SimpleITK"):
            try:
                lines.append(f"{name}=={metadata.version(name)}")
            except metadata.PackageNotFoundError:
                pass
        handle, path = tempfile.mkstemp(prefix="microctlike-constraints-", suffix=".txt")
        with os.fdopen(handle, "w") as stream:
            stream.write("\n".join(lines) + "\n")
        return path

    # ---------------------------------------------------------------- data and models
    @staticmethod
    def bundledModelPath() -> str:
        return os.path.join(MODULE_DIR, "Resources", "Models", "microctlike_generator.pt")

    def modelPathOrBundled(self, path) -> str:
        chosen = chosenPath(path)
        return str(chosen) if chosen is not None else self.bundledModelPath()

    @staticmethod
    def sampleDataPath() -> str:
        return os.path.join(MODULE_DIR, "Resources", "SampleData", f"{SAMPLE_NAME}.nrrd")

    def loadSampleData(self):
        """The bundled simulated MDCT as a new volume node (read by the library, as in any Slicer)."""
        from MicroCTLikeLib.mrml import node_from_volume
        from MicroCTLikeLib.volume import read_volume

        return node_from_volume(read_volume(self.sampleDataPath()), SAMPLE_NAME)

    @staticmethod
    def writeTinyModel(folder) -> str:
        """An untrained tiny FUNIT checkpoint (seeded) for smoke tests of the generation path."""
        from MicroCTLikeLib.train.untrained import write_untrained_checkpoint

        return str(write_untrained_checkpoint(os.path.join(folder, "tiny_untrained_funit.pt")))

    # ---------------------------------------------------------------- generation
    def generationRegion(self, roiNodes):
        from MicroCTLikeLib.mrml import generation_region

        return generation_region([n for n in roiNodes if n])

    def memoryEstimate(self, volumeNode, modelPath=None):
        from MicroCTLikeLib.mrml import estimate_generation_memory
        from MicroCTLikeLib.mrml.worker import DEFAULT_TARGET_SPACING_MM, checkpoint_target_spacing_mm

        spacing = DEFAULT_TARGET_SPACING_MM
        if modelPath and os.path.isfile(modelPath):
            spacing = checkpoint_target_spacing_mm(modelPath)
        return estimate_generation_memory(volumeNode, region="whole", target_spacing_mm=spacing)

    def startGeneration(self, inputVolumeNode, modelPath="", device="auto", region="whole", onProgress=None, onLog=None,
                        threads=None):
        """Write the input to a temporary NRRD and start the generation worker (PythonSlicer)."""
        from MicroCTLikeLib.mrml import start_generation_worker

        if inputVolumeNode is None:
            raise ValueError(_("Select an MDCT volume first."))
        return start_generation_worker(
            inputVolumeNode, model_path=modelPath or self.bundledModelPath(), device=device, region=region,
            python=self._pythonSlicerExecutable(), on_progress=onProgress, on_log=onLog, threads=threads,
        )

    def finishGeneration(self, runner, exitCode, outputVolumeNode=None, inputVolumeNode=None):
        from MicroCTLikeLib.mrml import finish_generation_worker

        return finish_generation_worker(runner, exitCode, output_node=outputVolumeNode, input_node=inputVolumeNode)

    def cleanupGeneration(self, runner) -> None:
        from MicroCTLikeLib.mrml import cleanup_generation_worker

        cleanup_generation_worker(runner)

    # ---------------------------------------------------------------- VOIs and metrics
    def placeStandardVOIs(self, volumeNode, roiNodes=(None, None)):
        from MicroCTLikeLib.mrml import place_standard_vois

        if volumeNode is None:
            raise ValueError(_("Select an MDCT volume first."))
        return place_standard_vois(volumeNode, rois=list(roiNodes))

    @staticmethod
    def warmUpMeasurement(onMessage=None):
        from MicroCTLikeLib.mrml import tables

        if tables._warmed_up:
            return None
        if onMessage is not None:
            onMessage(_("Compiling the thickness kernels (first measurement of the session, up to ~20 s)..."))
        return tables.warm_up_measurement()

    def measure(self, volumeNodes, roiNodes, thresholdMethod="isodata", tbSpPolicy="margin", tableNode=None,
                progress=None):
        from MicroCTLikeLib.mrml import measure_volumes_in_rois, metrics_table_node, place_in_study

        rows = measure_volumes_in_rois([n for n in volumeNodes if n], [n for n in roiNodes if n],
                                       threshold=thresholdMethod, tb_sp_policy=tbSpPolicy, progress=progress)
        table = metrics_table_node(rows, node=tableNode)
        if volumeNodes and volumeNodes[0] is not None:
            place_in_study(table, volumeNodes[0])
        return table

    def exportCsv(self, tableNode, path):
        from MicroCTLikeLib.mrml import export_table_csv

        if tableNode is None:
            raise ValueError(_("Measure first: there is no metrics table."))
        return export_table_csv(tableNode, path)

    @staticmethod
    def _pythonSlicerExecutable() -> str:
        # PythonSlicer sits next to the Slicer launcher; fall back to this interpreter.
        candidates = [os.path.join(os.path.dirname(sys.executable), name) for name in ("PythonSlicer", "PythonSlicer.exe")]
        return next((c for c in candidates if os.path.exists(c)), sys.executable)


#
# MicroCTLikeTest
#
class MicroCTLikeTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_WholeFlow()

    def test_WholeFlow(self):
        """Panel -> sample data -> 2 VOIs (placed twice) -> tiny model through the real worker -> drag -> measure."""
        import tempfile
        import time

        import numpy as np

        from MicroCTLikeLib import mrml

        self.delayDisplay("Building the module panel")
        widget = MicroCTLikeWidget()
        logic = widget.logic
        try:
            self.assertTrue(logic.ensureDependencies())
            self.delayDisplay("Loading the sample data")
            inputNode = logic.loadSampleData()
            inputBefore = np.array(slicer.util.arrayFromVolume(inputNode), copy=True)
            p = widget._parameterNode
            p.inputVolume = inputNode
            p.device = "cpu"
            p.region = "vois"
            widget.onPlaceStandardVOIsButton()
            widget.onPlaceStandardVOIsButton()  # placing again reuses the two ROIs
            self.assertEqual(slicer.mrmlScene.GetNumberOfNodesByClass("vtkMRMLMarkupsROINode"), 2)
            superior = p.superiorVOI
            self.assertEqual(tuple(superior.GetSize()), (15.0, 15.0, 5.0))

            self.delayDisplay("Moving the superior VOI by 0.5 mm")
            matrix = vtk.vtkMatrix4x4()
            matrix.DeepCopy(superior.GetObjectToNodeMatrix())
            matrix.SetElement(0, 3, matrix.GetElement(0, 3) - 0.5)  # towards the left, staying inside the sample
            superior.GetObjectToNodeMatrix().DeepCopy(matrix)
            superior.Modified()
            model = mrml.cylinder_model_of(superior)
            np.testing.assert_allclose(mrml.vois.cylinder_model_centre_ras(model), superior.GetCenterWorld(), atol=1e-3)

            with tempfile.TemporaryDirectory() as folder:
                p.modelPath = pathlib.Path(logic.writeTinyModel(folder))
                widget.workerThreads = 1  # a tiny model runs fastest on one thread
                self.delayDisplay("Generating with a tiny CPU model through the worker")
                widget.onGenerateButton()
                deadline = time.monotonic() + 900
                while widget._runner is not None and time.monotonic() < deadline:
                    widget.onRunnerTimer()
                    slicer.app.processEvents()
                    time.sleep(0.2)
                self.assertIsNone(widget._runner, "generation did not finish in time")
            output = p.outputVolume
            self.assertIsNotNone(output)
            self.assertNotEqual(output.GetID(), inputNode.GetID())
            np.testing.assert_array_equal(slicer.util.arrayFromVolume(inputNode), inputBefore)

            self.delayDisplay("Measuring")
            widget.onMeasureButton()
            table = p.metricsTable
            self.assertIsNotNone(table)
            rows = mrml.table_rows(table)
            self.assertEqual(len(rows), 4)  # 2 volumes x 2 VOIs
            self.assertTrue(all(0.0 <= row["BV/TV"] <= 1.0 for row in rows))
            self.assertFalse(mrml.table_is_stale(table))
            self.delayDisplay("Test passed")
        finally:
            widget.cleanup()
            slicer.mrmlScene.Clear()
