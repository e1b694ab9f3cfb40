<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis hasScaleBasedVisibilityFlag="0" styleCategories="AllStyleCategories" maxScale="0" version="3.22.16-Białowieża" minScale="1e+08">
  <flags>
    <Identifiable>1</Identifiable>
    <Removable>1</Removable>
    <Searchable>1</Searchable>
    <Private>0</Private>
  </flags>
  <temporal mode="0" fetchMode="0" enabled="0">
    <fixedRange>
      <start></start>
      <end></end>
    </fixedRange>
  </temporal>
  <customproperties>
    <Option type="Map">
      <Option value="Value" name="identify/format" type="QString"/>
    </Option>
  </customproperties>
  <pipe-data-defined-properties>
    <Option type="Map">
      <Option value="" name="name" type="QString"/>
      <Option name="properties"/>
      <Option value="collection" name="type" type="QString"/>
    </Option>
  </pipe-data-defined-properties>
  <pipe>
    <provider>
      <resampling maxOversampling="2" zoomedOutResamplingMethod="nearestNeighbour" enabled="false" zoomedInResamplingMethod="nearestNeighbour"/>
    </provider>
    <rasterrenderer alphaBand="-1" classificationMax="1" nodataColor="" opacity="1" type="singlebandpseudocolor" band="1" classificationMin="0">
      <minMaxOrigin>
        <limits>None</limits>
        <extent>WholeRaster</extent>
        <statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower>
        <cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor>
      </minMaxOrigin>
      <rastershader>
        <colorrampshader classificationMode="1" maximumValue="1" labelPrecision="6" clip="0" minimumValue="0" colorRampType="INTERPOLATED">
          <colorramp name="[source]" type="gradient">
            <Option type="Map">
              <Option value="68,1,84,255" name="color1" type="QString"/>
              <Option value="253,231,37,255" name="color2" type="QString"/>
              <Option value="0" name="discrete" type="QString"/>
              <Option value="gradient" name="rampType" type="QString"/>
              <Option value="0.0196078;70,8,92,255:0.0392157;71,16,99,255:0.0588235;72,23,105,255:0.0784314;72,29,111,255:0.0980392;72,36,117,255:0.117647;71,42,122,255:0.137255;70,48,126,255:0.156863;69,55,129,255:0.176471;67,61,132,255:0.196078;65,66,135,255:0.215686;63,72,137,255:0.235294;61,78,138,255:0.254902;58,83,139,255:0.27451;56,89,140,255:0.294118;53,94,141,255:0.313725;51,99,141,255:0.333333;49,104,142,255:0.352941;46,109,142,255:0.372549;44,113,142,255:0.392157;42,118,142,255:0.411765;41,123,142,255:0.431373;39,128,142,255:0.45098;37,132,142,255:0.470588;35,137,142,255:0.490196;33,142,141,255:0.509804;32,146,140,255:0.529412;31,151,139,255:0.54902;30,156,137,255:0.568627;31,161,136,255:0.588235;33,165,133,255:0.607843;36,170,131,255:0.627451;40,174,128,255:0.647059;46,179,124,255:0.666667;53,183,121,255:0.686275;61,188,116,255:0.705882;70,192,111,255:0.72549;80,196,106,255:0.745098;90,200,100,255:0.764706;101,203,94,255:0.784314;112,207,87,255:0.803922;124,210,80,255:0.823529;137,213,72,255:0.843137;149,216,64,255:0.862745;162,218,55,255:0.882353;176,221,47,255:0.901961;189,223,38,255:0.921569;202,225,31,255:0.941176;216,226,25,255:0.960784;229,228,25,255:0.980392;241,229,29,255" name="stops" type="QString"/>
            </Option>
            <prop k="color1" v="68,1,84,255"/>
            <prop k="color2" v="253,231,37,255"/>
            <prop k="discrete" v="0"/>
            <prop k="rampType" v="gradient"/>
            <prop k="stops" v="0.0196078;70,8,92,255:0.0392157;71,16,99,255:0.0588235;72,23,105,255:0.0784314;72,29,111,255:0.0980392;72,36,117,255:0.117647;71,42,122,255:0.137255;70,48,126,255:0.156863;69,55,129,255:0.176471;67,61,132,255:0.196078;65,66,135,255:0.215686;63,72,137,255:0.235294;61,78,138,255:0.254902;58,83,139,255:0.27451;56,89,140,255:0.294118;53,94,141,255:0.313725;51,99,141,255:0.333333;49,104,142,255:0.352941;46,109,142,255:0.372549;44,113,142,255:0.392157;42,118,142,255:0.411765;41,123,142,255:0.431373;39,128,142,255:0.45098;37,132,142,255:0.470588;35,137,142,255:0.490196;33,142,141,255:0.509804;32,146,140,255:0.529412;31,151,139,255:0.54902;30,156,137,255:0.568627;31,161,136,255:0.588235;33,165,133,255:0.607843;36,170,131,255:0.627451;40,174,128,255:0.647059;46,179,124,255:0.666667;53,183,121,255:0.686275;61,188,116,255:0.705882;70,192,111,255:0.72549;80,196,106,255:0.745098;90,200,100,255:0.764706;101,203,94,255:0.784314;112,207,87,255:0.803922;124,210,80,255:0.823529;137,213,72,255:0.843137;149,216,64,255:0.862745;162,218,55,255:0.882353;176,221,47,255:0.901961;189,223,38,255:0.921569;202,225,31,255:0.941176;216,226,25,255:0.960784;229,228,25,255:0.980392;241,229,29,255"/>
          </colorramp>
          <item value="0" alpha="255" label="0" color="#440154"/>
          <item value="0.0196078" alpha="255" label="0.0196" color="#46085c"/>
          <item value="0.0392157" alpha="255" label="0.0392" color="#471063"/>
          <item value="0.0588235" alpha="255" label="0.0588" color="#481769"/>
          <item value="0.0784314" alpha="255" label="0.0784" color="#481d6f"/>
          <item value="0.0980392" alpha="255" label="0.098" color="#482475"/>
          <item value="0.117647" alpha="255" label="0.118" color="#472a7a"/>
          <item value="0.137255" alpha="255" label="0.137" color="#46307e"/>
          <item value="0.156863" alpha="255" label="0.157" color="#453781"/>
          <item value="0.176471" alpha="255" label="0.176" color="#433d84"/>
          <item value="0.196078" alpha="255" label="0.196" color="#414287"/>
          <item value="0.215686" alpha="255" label="0.216" color="#3f4889"/>
          <item value="0.235294" alpha="255" label="0.235" color="#3d4e8a"/>
          <item value="0.254902" alpha="255" label="0.255" color="#3a538b"/>
          <item value="0.27451" alpha="255" label="0.275" color="#38598c"/>
          <item value="0.294118" alpha="255" label="0.294" color="#355e8d"/>
          <item value="0.313725" alpha="255" label="0.314" color="#33638d"/>
          <item value="0.333333" alpha="255" label="0.333" color="#31688e"/>
          <item value="0.352941" alpha="255" label="0.353" color="#2e6d8e"/>
          <item value="0.372549" alpha="255" label="0.373" color="#2c718e"/>
          <item value="0.392157" alpha="255" label="0.392" color="#2a768e"/>
          <item value="0.411765" alpha="255" label="0.412" color="#297b8e"/>
          <item value="0.431373" alpha="255" label="0.431" color="#27808e"/>
          <item value="0.45098" alpha="255" label="0.451" color="#25848e"/>
          <item value="0.470588" alpha="255" label="0.471" color="#23898e"/>
          <item value="0.490196" alpha="255" label="0.49" color="#218e8d"/>
          <item value="0.509804" alpha="255" label="0.51" color="#20928c"/>
          <item value="0.529412" alpha="255" label="0.529" color="#1f978b"/>
          <item value="0.54902" alpha="255" label="0.549" color="#1e9c89"/>
          <item value="0.568627" alpha="255" label="0.569" color="#1fa188"/>
          <item value="0.588235" alpha="255" label="0.588" color="#21a585"/>
          <item value="0.607843" alpha="255" label="0.608" color="#24aa83"/>
          <item value="0.627451" alpha="255" label="0.627" color="#28ae80"/>
          <item value="0.647059" alpha="255" label="0.647" color="#2eb37c"/>
          <item value="0.666667" alpha="255" label="0.667" color="#35b779"/>
          <item value="0.686275" alpha="255" label="0.686" color="#3dbc74"/>
          <item value="0.705882" alpha="255" label="0.706" color="#46c06f"/>
          <item value="0.72549" alpha="255" label="0.725" color="#50c46a"/>
          <item value="0.745098" alpha="255" label="0.745" color="#5ac864"/>
          <item value="0.764706" alpha="255" label="0.765" color="#65cb5e"/>
          <item value="0.784314" alpha="255" label="0.784" color="#70cf57"/>
          <item value="0.803922" alpha="255" label="0.804" color="#7cd250"/>
          <item value="0.823529" alpha="255" label="0.824" color="#89d548"/>
          <item value="0.843137" alpha="255" label="0.843" color="#95d840"/>
          <item value="0.862745" alpha="255" label="0.863" color="#a2da37"/>
          <item value="0.882353" alpha="255" label="0.882" color="#b0dd2f"/>
          <item value="0.901961" alpha="255" label="0.902" color="#bddf26"/>
          <item value="0.921569" alpha="255" label="0.922" color="#cae11f"/>
          <item value="0.941176" alpha="255" label="0.941" color="#d8e219"/>
          <item value="0.960784" alpha="255" label="0.961" color="#e5e419"/>
          <item value="0.980392" alpha="255" label="0.98" color="#f1e51d"/>
          <item value="1" alpha="255" label="1" color="#fde725"/>
          <rampLegendSettings minimumLabel="" direction="0" prefix="" useContinuousLegend="1" maximumLabel="" suffix="" orientation="2">
            <numericFormat id="basic">
              <Option type="Map">
                <Option value="" name="decimal_separator" type="QChar"/>
                <Option value="6" name="decimals" type="int"/>
                <Option value="0" name="rounding_type" type="int"/>
                <Option value="false" name="show_plus" type="bool"/>
                <Option value="true" name="show_thousand_separator" type="bool"/>
                <Option value="false" name="show_trailing_zeros" type="bool"/>
                <Option value="" name="thousand_separator" type="QChar"/>
              </Option>
            </numericFormat>
          </rampLegendSettings>
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast contrast="0" gamma="1" brightness="0"/>
    <huesaturation colorizeStrength="100" saturation="0" colorizeGreen="128" colorizeBlue="128" colorizeRed="255" invertColors="0" grayscaleMode="0" colorizeOn="0"/>
    <rasterresampler maxOversampling="2"/>
    <resamplingStage>resamplingFilter</resamplingStage>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
