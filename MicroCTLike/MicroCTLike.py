"""MicroCTLike: micro-CT-like volumes from clinical CT and trabecular bone microstructure.

The module file stays thin: every decision lives in ``MicroCTLikeLib`` (pure Python, tested
with pytest and a real MRML scene outside Slicer). Order: Module -> parameter node ->
Widget -> Logic -> Test.
"""

import logging
import os
import sys

import qt
import slicer
import vtk
from slicer import vtkMRMLMarkupsROINode, vtkMRMLScalarVolumeNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

# Non-Slicer Python packages the library needs (torch comes from the PyTorch extension).
REQUIRED_PACKAGES = ["edt", "scikit-image", "opencv-python-headless", "tqdm", "pyyaml"]


#
# MicroCTLike
#
class MicroCTLike(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MicroCTLike")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Quantification")]
        self.parent.dependencies = ["Markups"]
        self.parent.contributors = ["MicroCTLike developers"]
        self.parent.helpText = _(
            "Generate a micro-CT-like volume from a clinical CT (MDCT) of a lumbar vertebra with a FUNIT "
            "generator, place the standardized 15 mm x 5 mm cylindrical VOIs and measure BV/TV, Tb.Th and "
            "Tb.Sp exactly as BoneJ does. The bundled generator is trained on simulated data only and is not "
            "validated on patients. See the project README for the tutorial."
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

    iconsPath = os.path.join(os.path.dirname(__file__), "Resources/Icons")
    samplePath = os.path.join(os.path.dirname(__file__), "Resources/SampleData/SimulatedVertebraMDCT.nrrd")
    if not os.path.exists(samplePath):
        return
    SampleData.SampleDataLogic.registerCustomSampleDataSource(
        category="MicroCTLike",
        sampleName="SimulatedVertebraMDCT",
        thumbnailFileName=os.path.join(iconsPath, "MicroCTLike.png"),
        uris="file://" + samplePath.replace("\\", "/"),
        fileNames="SimulatedVertebraMDCT.nrrd",
        nodeNames="SimulatedVertebraMDCT",
        loadFileType="VolumeFile",
    )


#
# MicroCTLikeParameterNode
#
@parameterNodeWrapper
class MicroCTLikeParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    outputVolume: vtkMRMLScalarVolumeNode
    modelPath: str = ""
    device: str = "auto"
    region: str = "standard-vois"
    superiorVOI: vtkMRMLMarkupsROINode
    inferiorVOI: vtkMRMLMarkupsROINode
    thresholdMethod: str = "isodata"
    tbSpPolicy: str = "margin"


#
# MicroCTLikeWidget
#
class MicroCTLikeWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._runner = None
        self._runnerTimer = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MicroCTLike.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = MicroCTLikeLogic()
        self.ui.generationProgressBar.visible = False  # shown while a generation runs

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.generateButton.connect("clicked(bool)", self.onGenerateButton)
        self.ui.placeStandardVOIsButton.connect("clicked(bool)", self.onPlaceStandardVOIsButton)
        self.ui.measureButton.connect("clicked(bool)", self.onMeasureButton)
        self.ui.superiorVOISelector.connect("currentNodeChanged(vtkMRMLNode*)", self.ui.voiPlaceWidget.setCurrentNode)
        self._runnerTimer = qt.QTimer()
        self._runnerTimer.setInterval(200)
        self._runnerTimer.connect("timeout()", self.onRunnerTimer)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.cancelGeneration()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtonStates)

    def onSceneStartClose(self, caller, event) -> None:
        self.cancelGeneration()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode:
                self._parameterNode.inputVolume = firstVolumeNode

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtonStates)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtonStates)
            self._updateButtonStates()

    def _updateButtonStates(self, caller=None, event=None) -> None:
        # Button states and tooltips are derived from the parameter node only.
        from MicroCTLikeLib.mrml import action_states

        states = action_states(
            has_input=bool(self._parameterNode and self._parameterNode.inputVolume),
            has_vois=bool(self._parameterNode and (self._parameterNode.superiorVOI or self._parameterNode.inferiorVOI)),
            generating=self._runner is not None,
        )
        for name, (enabled, tooltip, text) in states.items():
            button = getattr(self.ui, name)
            button.enabled = enabled
            button.toolTip = _(tooltip)
            button.text = _(text)

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
            self.ui.generationProgressBar.visible = True
            self.ui.generationProgressBar.value = 0
            self._runner = self.logic.startGeneration(
                p.inputVolume, modelPath=p.modelPath, device=p.device, region=p.region,
                onProgress=self._onGenerationProgress, onLog=self.ui.logTextEdit.appendPlainText,
            )
            self._runnerTimer.start()
            self._updateButtonStates()

    def _onGenerationProgress(self, done, total, message) -> None:
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
        self._updateButtonStates()
        with slicer.util.tryWithErrorDisplay(_("Generation failed."), waitCursor=True):
            outputNode = self.logic.finishGeneration(runner, code, self._parameterNode.outputVolume)
            self._parameterNode.outputVolume = outputNode
            slicer.util.setSliceViewerLayers(background=self._parameterNode.inputVolume, foreground=outputNode,
                                             foregroundOpacity=0.5)

    def cancelGeneration(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            self.ui.logTextEdit.appendPlainText(_("Cancelled."))
            self.logic.cleanupGeneration(self._runner)
            self._runner = None
            if self._runnerTimer:
                self._runnerTimer.stop()
            self._updateButtonStates()

    # ---------------------------------------------------------------- VOIs and metrics
    def onPlaceStandardVOIsButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to place the standard VOIs."), waitCursor=True):
            superior, inferior = self.logic.placeStandardVOIs(self._parameterNode.inputVolume)
            self._parameterNode.superiorVOI = superior
            self._parameterNode.inferiorVOI = inferior

    def onMeasureButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to measure."), waitCursor=True):
            p = self._parameterNode
            tableNode = self.logic.measure(
                [p.inputVolume, p.outputVolume], [p.superiorVOI, p.inferiorVOI],
                thresholdMethod=p.thresholdMethod, tbSpPolicy=p.tbSpPolicy,
            )
            self.ui.metricsTableView.setMRMLTableNode(tableNode)


#
# MicroCTLikeLogic
#
class MicroCTLikeLogic(ScriptedLoadableModuleLogic):
    """GUI-free logic: plain arguments, raises with clear messages, callable from scripts and tests."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return MicroCTLikeParameterNode(super().getParameterNode())

    def ensureDependencies(self) -> bool:
        """Install torch through the PyTorch extension and the other packages after one confirmation."""
        try:
            import torch  # noqa: F401
        except ImportError:
            try:
                import PyTorchUtils
            except ImportError:
                raise RuntimeError(_("This module needs the PyTorch extension. Install it from the Extensions Manager."))
            if not PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=True, torchVersionRequirement=">=2.2"):
                return False
        missing = []
        for package, module in (("edt", "edt"), ("scikit-image", "skimage"), ("opencv-python-headless", "cv2"),
                                ("tqdm", "tqdm"), ("pyyaml", "yaml")):
            try:
                __import__(module)
            except ImportError:
                missing.append(package)
        if missing:
            if not slicer.util.confirmOkCancelDisplay(_("MicroCTLike needs these Python packages: ") + ", ".join(missing)):
                return False
            if hasattr(slicer, "packaging") and hasattr(slicer.packaging, "pip_ensure"):
                slicer.packaging.pip_ensure(missing)
            else:
                slicer.util.pip_install(missing)
        return True

    def bundledModelPath(self) -> str:
        return os.path.join(os.path.dirname(__file__), "Resources", "Models", "microctlike_generator.pt")

    def startGeneration(self, inputVolumeNode, modelPath="", device="auto", region="standard-vois",
                        onProgress=None, onLog=None):
        """Write the input to a temporary NRRD and start the generation worker (PythonSlicer)."""
        from MicroCTLikeLib.mrml import start_generation_worker

        return start_generation_worker(
            inputVolumeNode, model_path=modelPath or self.bundledModelPath(), device=device, region=region,
            python=self._pythonSlicerExecutable(), on_progress=onProgress, on_log=onLog,
        )

    def finishGeneration(self, runner, exitCode, outputVolumeNode=None):
        from MicroCTLikeLib.mrml import finish_generation_worker

        return finish_generation_worker(runner, exitCode, output_node=outputVolumeNode)

    def cleanupGeneration(self, runner) -> None:
        from MicroCTLikeLib.mrml import cleanup_generation_worker

        cleanup_generation_worker(runner)

    def placeStandardVOIs(self, volumeNode):
        from MicroCTLikeLib.mrml import place_standard_vois

        return place_standard_vois(volumeNode)

    def measure(self, volumeNodes, roiNodes, thresholdMethod="isodata", tbSpPolicy="margin"):
        from MicroCTLikeLib.mrml import measure_volumes_in_rois, metrics_table_node

        rows = measure_volumes_in_rois([n for n in volumeNodes if n], [n for n in roiNodes if n],
                                       threshold=thresholdMethod, tb_sp_policy=tbSpPolicy)
        return metrics_table_node(rows, name="MicroCTLike metrics")

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
        self.test_VolumeRoundTrip()
        self.setUp()
        self.test_StandardVOIsAndMeasurement()

    def test_VolumeRoundTrip(self):
        import numpy as np

        from MicroCTLikeLib import mrml
        from MicroCTLikeLib.volume import Volume

        volume = Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4), spacing_xyz_mm=(0.2, 0.3, 0.4),
                        origin_lps_mm=(1.0, 2.0, 3.0))
        node = mrml.node_from_volume(volume, "roundtrip")
        back = mrml.volume_from_node(node)
        self.assertTrue(back.same_geometry(volume))
        self.assertTrue((back.array == volume.array).all())

    def test_StandardVOIsAndMeasurement(self):
        from MicroCTLikeLib import mrml
        from MicroCTLikeLib.simulate import simulate_specimen

        specimen = simulate_specimen(seed=7, preset="small")
        node = mrml.node_from_volume(specimen.mdct, "SimulatedMDCT")
        logic = MicroCTLikeLogic()
        superior, inferior = logic.placeStandardVOIs(node)
        self.assertEqual(tuple(superior.GetSize()), (15.0, 15.0, 5.0))
        table = logic.measure([node], [superior, inferior])
        self.assertEqual(table.GetTable().GetNumberOfRows(), 2)
        self.delayDisplay("Test passed")
